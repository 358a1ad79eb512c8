"""The base exception for a record that a step rejects with a plain reason."""


class RecordRejected(ValueError):
    """Raised when a step rejects a record; the message is the dead letter's reason.

    Attributes:
        code: A short snake-case name of the cause, used in counter names.
        error_type: The dead letter's `error_type`.
    """

    def __init__(self, message: str, code: str, error_type: str):
        super().__init__(message)
        self.code = code
        self.error_type = error_type
