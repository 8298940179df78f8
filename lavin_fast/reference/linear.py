"""Reference of lavin_fast.linear: y = x W^T + b (float64-capable)."""


def linear(x, weight, bias=None):
    y = x @ weight.T
    return y if bias is None else y + bias
