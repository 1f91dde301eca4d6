"""MuJoCo's warnings, kept out of the user's folder.

MuJoCo with no warning handler of its own prints each warning and appends it to MUJOCO_LOG.TXT
in the current folder: making HalfCheetah-v5 (with MuJoCo 4.0) warns that its model's
'settotalmass' is deprecated, so reading that env's size, or calibrating on it, left a
MUJOCO_LOG.TXT wherever the command ran. Both places route MuJoCo's warnings through a handler
here instead. MuJoCo is imported only where the env uses it (its entry point names it, or its
module imported it); a handler must never raise (MuJoCo aborts the process if it does).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator

_SHOWN: set[str] = set()


def _uses_mujoco(env_spec) -> bool:
    return "mujoco" in sys.modules or "mujoco" in str(getattr(env_spec, "entry_point", ""))


def _swallow(message: str) -> None:
    pass


def _to_stderr(message: str) -> None:
    """Each warning once per process on stderr, no file. MuJoCo says a simulation warning
    once per episode with its time ("... at DOF 3. The simulation is unstable. Time = 0.12."):
    one at another time is a repeat, one at another DOF is not."""
    try:
        kind = re.sub(r"Time = [-+.0-9eE]+", "Time = #", message)
        if kind not in _SHOWN:
            _SHOWN.add(kind)
            sys.stderr.write(f"MuJoCo warning: {message} (its repeats in this process are not "
                             "shown)\n")
    except BaseException:  # noqa: BLE001 - an exception here would abort the process
        pass


@contextlib.contextmanager
def quiet(env_spec=None) -> Iterator[None]:
    """MuJoCo's warnings dropped while the block runs (an env made only to read its spaces),
    the handler before it restored after."""
    if not _uses_mujoco(env_spec):
        yield
        return
    try:
        import mujoco

        before = mujoco.get_mju_user_warning()
        mujoco.set_mju_user_warning(_swallow)
    except Exception:  # noqa: BLE001 - a MuJoCo without the hook: its own behaviour stands
        yield
        return
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(before)


def warnings_to_stderr(env_spec=None) -> None:
    """From now on in this process, MuJoCo's warnings go to stderr (_to_stderr), not to
    MUJOCO_LOG.TXT: for envs that step for a whole run. A handler set before is kept."""
    if not _uses_mujoco(env_spec):
        return
    try:
        import mujoco

        if mujoco.get_mju_user_warning() is None:
            mujoco.set_mju_user_warning(_to_stderr)
    except Exception:  # noqa: BLE001 - a MuJoCo without the hook: its own behaviour stands
        pass
