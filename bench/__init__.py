"""fastbp's benchmark suite: ``python -m bench [--quick]``."""
