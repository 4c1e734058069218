"""One exception type for everything a user can get wrong; the CLI turns it into a one-line error."""


class SheetsgdError(Exception):
    """A problem with the user's input (template, option, file) rather than a bug.

    ``where`` names the file, sheet or cell when known, so the message can point at it.
    """

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def refuse_options(options: dict, what: str, source: str | None) -> None:
    """One line naming the first option given (not None) that does not apply to ``what``."""
    unused = [k.replace("_", "-") for k, v in options.items() if v is not None]
    if unused:
        raise SheetsgdError(f"--{unused[0]} does not apply to {what}", source)
