"""Helpers of the whole-room soak (tests/bench/soak.py): the node processes it drives."""
