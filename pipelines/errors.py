"""Errors a user caused and can fix. Each surface (the UI, `python -m pipelines`, `python -m
export`) catches UserError once and shows its message; anything else keeps its traceback."""


class UserError(Exception):
    """A problem the user can fix; the message says what and how, and is shown as is."""


class InvalidRequest(UserError, ValueError):
    """Input to a generation (or an export) that the model cannot take."""


class InvalidSetting(UserError, ValueError):
    """A serving setting (flag or TURBO_* variable) with a value that cannot work."""


class ModelNotAvailable(UserError, RuntimeError):
    """The model is in the catalogue but cannot be loaded here; the message says how to get it."""


class HubUnreachable(UserError, RuntimeError):
    """Something must come from the Hugging Face Hub, and the Hub cannot be reached."""


class RecompileFailed(UserError, RuntimeError):
    """A static-shape recompile for a request's size failed (out of memory, say)."""


def summary(error: BaseException) -> str:
    """An exception in one line for a user's message: "type: first line", or the type alone
    when it has no message."""
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return f"{name}: {lines[0][:300]}" if lines else name
