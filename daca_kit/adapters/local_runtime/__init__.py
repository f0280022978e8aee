"""The kit's local durable workflow runtime (the default; `DACA_RUNTIME=local`).

    runtime = LocalRuntime(store, workflows={"chat_turn": chat_turn}, activities=acts.as_dict())
    runtime.start()
    state = runtime.schedule("chat_turn", instance_id, input)   # runs until the turn settles

It runs Dapr-Workflow-style generator functions with the same replay model as Dapr's engine: each
yielded task's result is appended to the instance's history; resuming replays the generator from the
start, feeding recorded results, and checks that the same tasks are asked for again (a different task
means the workflow is not deterministic: WorkflowError).

Durability: an instance is written to the SQL database when it first has to wait (for an external
event or a timer) and when it ends; a turn that finishes without waiting costs no workflow writes
at all when its result is recoverable from what its activities stored (see `recoverable`). Events
raised for an instance are stored in an inbox table and consumed in the same transaction that saves
the history, so a crash at any point loses nothing. An activity that lets someone outside act on the
instance (`request_review`: a reviewer may decide at once) is named in `checkpoint_before`: the
instance is written before it runs, so whatever it exposes can always resume the instance, in this
process, in another one, or after a restart. Until its first step ends an instance holds its lock, so
an event raised meanwhile in this process resumes it right after.

No polling: a waiting instance costs nothing until its event is raised (the raiser resumes it) or its
timer fires (one in-process timer thread sleeps until the earliest due time). After a restart,
`start()` re-arms the timers of waiting instances and resumes each once, to catch events raised while
the process was down.

Several processes on one database (`WEB_CONCURRENCY` workers, replicas): each step that does work runs
under a lease on its instance, and each saved step is announced to the other processes (see `peers.py`).

Layout: `runtime.py` (LocalRuntime, the facade), `engine.py` (ReplayEngine: replay and new steps),
`timers.py` (TimerQueue), `waiters.py` (who waits for which instance here), `peers.py` (leases and
wake-ups shared with other processes), `tasks.py` (the tasks and contexts a workflow body sees).
"""

from daca_kit.adapters.local_runtime.engine import ReplayEngine
from daca_kit.adapters.local_runtime.runtime import LocalRuntime
from daca_kit.adapters.local_runtime.tasks import ActivityContext, ActivityFailed, WorkflowContext
from daca_kit.adapters.local_runtime.timers import TimerQueue

__all__ = [
    "ActivityContext",
    "ActivityFailed",
    "LocalRuntime",
    "ReplayEngine",
    "TimerQueue",
    "WorkflowContext",
]
