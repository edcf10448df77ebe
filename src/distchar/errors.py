"""The one exception type that user-facing code raises for bad input."""


class DistcharError(Exception):
    """Bad input, explained in one sentence that names the culprit (a params key, a file, a layer).

    Stages and command-line entry points catch it and print only the message, so a researcher
    sees one clear sentence instead of a traceback.
    """
