"""pytest plugin (registered through the `pytest11` entry point): fixtures for pre-flight
checks inside a project's own test suite. Filled in by the sanity work."""
