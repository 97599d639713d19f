"""Every Python process that has this folder on PYTHONPATH runs with its wall clock a year ahead.

time-machine moves time.time(), datetime.now() and the other wall-clock functions of this process,
ticking from a year after the real time at start-up; monotonic clocks (sleeps, timeouts) stay
real. Processes that are not Python (Alertmanager, redis-server) keep the real clock, and so do
the two gRPC servers, the providers' (python -m pulumi.dynamic) and the policy pack's
(python -m pulumi.policy): a gRPC server does not start while time-machine travels (its
server.start() never returns; measured with grpcio 1.85 and time-machine 3.6).
"""

import datetime
import os
import sys

# Also kept real: what CLOCK_AHEAD_REAL names (comma-separated `-m` modules), e.g. `pytest` for the
# tests that serve an inline program to the Pulumi CLI from the test process (a gRPC server too).
REAL_CLOCK = ("pulumi.dynamic", "pulumi.policy", *filter(None, os.environ.get("CLOCK_AHEAD_REAL", "").split(",")))

if not any(name in sys.orig_argv for name in REAL_CLOCK):
    try:
        import time_machine
    except ImportError:  # a virtualenv without time-machine (the policy pack's): real clock
        pass
    else:
        _year_ahead = time_machine.travel(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365), tick=True)
        _year_ahead.start()
        # time-machine's clock starts ticking at the first reading, not at start(): read it now, or
        # a process that first reads the time seconds later (after its imports) lags behind the rest.
        _year_ahead_began = datetime.datetime.now(datetime.UTC)
