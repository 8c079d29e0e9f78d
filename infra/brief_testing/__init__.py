"""Fakes and harnesses over the local stack: model and service fakes, sample pages, faults,
the chaos run and the demo. Installed with Brief, as `brief demo` and `brief chaos` use them."""
