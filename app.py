"""turbo-studio: the entry point (a Hugging Face Space's app_file). Reads the settings from the
flags and TURBO_* variables, builds the app (ui/) and launches it.

    python app.py [--host H] [--port N] [--share --auth USER:PASS] [--device CPU|GPU|NPU|AUTO]
                  [--models-dir DIR] [--queue-size N] [--ram-budget-gb GB] [--precision P]
                  [--ov-cache/--no-ov-cache] [--static-shapes] [--preload] [--mcp] [-v]
                  [--ray local|auto|ADDRESS [--replicas N]]

Every flag has a TURBO_* variable (README.md, Configuration). `import app` builds nothing;
`app.demo` (what `gradio app.py` reload mode asks for) builds the app from this process's flags.
"""

import argparse
import logging
import signal
import sys

from pipelines import settings as config
from pipelines.errors import UserError
from ui.app_settings import AppSettings


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="python app.py", description="turbo-studio web app")
    config.add_flags(command, kind=AppSettings)
    return command


def parse_settings(argv: list[str] | None = None) -> AppSettings:
    """Settings from the flags (argv; None: this process's), else TURBO_* variables; a value
    that cannot work stops here with a usage message (exit status 2)."""
    command = parser()
    _, settings = config.parse(command, argv, kind=AppSettings)
    from pipelines import device  # imports OpenVINO: after the flags are read

    try:
        device.check(settings)
    except config.InvalidSetting as e:
        command.error(str(e))
    return settings


def create_demo(settings: AppSettings):
    from ui.demo import create_demo as build  # gradio and OpenVINO: only when an app is made

    return build(settings)


def launch_options(settings: AppSettings) -> dict:
    """demo.launch's arguments for these settings."""
    from ui.demo import LAUNCH_OPTIONS

    return dict(server_name=settings.host, server_port=settings.port, share=settings.share,
                auth=settings.auth_pair, mcp_server=settings.mcp, **LAUNCH_OPTIONS)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    logging.basicConfig(level=logging.INFO if settings.verbose else logging.WARNING)
    try:
        demo = create_demo(settings)
    except UserError as e:  # Ray missing or its cluster unreachable (--ray): say so, exit 1
        sys.exit(f"turbo-studio: {e}")
    # SIGTERM (docker stop, systemd, a Space restart) ends the app as Ctrl+C does: gradio
    # closes, and a local Ray cluster is shut down on the way out instead of left running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    demo.launch(**launch_options(settings))


def __getattr__(name: str):
    # `gradio app.py` (reload mode) reads `app.demo`: built on demand, from this process's flags.
    if name == "demo":
        return create_demo(parse_settings(sys.argv[1:]))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
