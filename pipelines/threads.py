"""Running OpenVINO work off a process's main thread."""

import threading


def on_a_worker_thread(call):
    """call() on a worker thread, as the app runs generations (the CLI and the benchmark's
    children call this); the main thread waits, and Ctrl+C still ends the command (the thread
    is a daemon). An exception is raised again on the calling thread.

    Why: on some CPUs an OpenVINO inference called from a process's main thread takes much
    longer than from any other thread (measured with pure OpenVINO on the full-size UNet; see
    docs/usage.md); neither OpenVINO nor Python documents why."""
    outcome = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as e:  # noqa: BLE001 -- raised again on the calling thread
            outcome["error"] = e

    worker = threading.Thread(target=work, name="generate", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
