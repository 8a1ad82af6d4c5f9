"""Ctrl-C at the boundary of a unit of work, never inside it.

Python raises KeyboardInterrupt only when control comes back from compiled
code: a SIGINT that arrives during a compiled epoch surfaces after the epoch
has changed the weights and the optimizer state, but before the counters that
describe them (n_iter_, loss_curve_, t_) are updated. Holding the signal back
until that bookkeeping is done keeps the model one consistent state.
"""

import signal
import threading
from contextlib import contextmanager


@contextmanager
def deferred_interrupt():
    """Run the body with SIGINT held back, then deliver it to the handler that
    was in place. Only Python-level handlers are deferred (they are the ones
    that raise); off the main thread no signal handler runs, so nothing is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        previous(signal.SIGINT, received[0])
