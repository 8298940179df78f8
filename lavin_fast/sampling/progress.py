"""A tiny progress display on stderr (tqdm is not a dependency): one bar per request.

On a terminal all bars are redrawn in place after every step; otherwise (logs, pipes) each bar is
printed once, when its request finishes, so logs do not fill with carriage returns."""

import sys
import time


class ProgressBars:
    def __init__(self, labels, total, stream=None, enabled=True, width=24):
        self.labels, self.total, self.width = list(labels), total, width
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and bool(self.labels)
        self.done = [0] * len(self.labels)
        self.start = time.perf_counter()
        self.tty = self.enabled and getattr(self.stream, "isatty", lambda: False)()
        self.drawn = False

    def _line(self, i):
        n = self.done[i]
        fill = self.width * n // max(self.total, 1)
        el = time.perf_counter() - self.start
        return f"{self.labels[i]} [{'#' * fill}{'.' * (self.width - fill)}] {n}/{self.total} {el:6.1f}s"

    def update(self, indices, n=1):
        """Advance the bars of the requests in `indices` by n steps."""
        for i in indices:
            self.done[i] = min(self.total, self.done[i] + n)
        if not self.enabled:
            return
        if self.tty:
            if self.drawn:
                self.stream.write(f"\x1b[{len(self.labels)}F")
            self.stream.write("".join(f"\x1b[2K{self._line(i)}\n" for i in range(len(self.labels))))
            self.drawn = True
        else:
            for i in indices:
                if self.done[i] == self.total:
                    self.stream.write(self._line(i) + "\n")
        self.stream.flush()
