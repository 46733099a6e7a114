"""Running OpenVINO work off a process's main thread."""

import threading


def on_a_worker_thread(call):
    """call() on a worker thread, as the app runs generations (the CLI and the benchmark's
    children call this); the main thread waits, and Ctrl+C still ends the command (the thread
    is a daemon). An exception is raised again on the calling thread.

    Why: on the 2-core AVX2 EPYC an OpenVINO inference called from a process's main thread
    took 1.7x as long as from any other thread (the full-size UNet 43.7 s vs 26.0 s, pure
    OpenVINO, see ../shared/VERIFIED.md); neither OpenVINO nor Python documents why."""
    outcome = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as e:  # raised again on the main thread, as if called there
            outcome["error"] = e

    worker = threading.Thread(target=work, name="generate", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
