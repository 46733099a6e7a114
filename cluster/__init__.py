"""Optional scale-out on Ray Serve (requirements-ray.txt): model workers as a Serve deployment
(worker.py), the engine the UI calls them through (engine.py), and starting or joining a
cluster (start.py). Nothing outside this package imports Ray."""
