"""The shared-string table of an untrusted workbook (``xl/sharedStrings.xml``), streamed and bounded.

Its own module beside sheetsgd.read.package, which reads the part (bounded like every part) and hands the
bytes here.
"""
from __future__ import annotations

from xml.parsers import expat


class SharedStrings:
    """The shared-string table, streamed (expat, no tree: linear time, memory for the strings only) and
    bounded: entries, their characters together, and runs per string (``Limits``); East-Asian reading
    hints (``<rPh>``) are not part of the text. A DTD or entity declaration is refused."""

    def __init__(self, book, name: str):  # book: the sheetsgd.read.package.Workbook reading it
        self.book, self.name, self.limits = book, name, book.limits
        self.out: list[str] = []
        self.text: list[str] | None = None
        self.length = self.total = self.runs = self.phonetic = 0
        self.in_t = False

    def parse(self, data: bytes) -> list[str]:
        if data.count(b"<si>") + data.count(b"<si ") > self.limits.max_shared_strings:  # the plain form, at C speed
            self._too_many()
        parser = expat.ParserCreate(namespace_separator="}")
        parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = self._refuse_dtd
        parser.StartElementHandler, parser.EndElementHandler = self._start, self._end
        parser.CharacterDataHandler = self._chars
        parser.buffer_text = True
        try:
            parser.Parse(data, True)
        except expat.ExpatError as exc:
            raise self.book.error(f"part {self.name} is not well-formed XML ({exc})") from None
        return self.out

    def _too_many(self):
        raise self.book.error(f"more than {self.limits.max_shared_strings:,} shared strings in {self.name}: refused")

    def _refuse_dtd(self, *_):
        raise self.book.error(f"part {self.name} declares a DTD or entities, refused")

    def _start(self, tag, attrs):
        local = tag.rsplit("}", 1)[-1]
        if local == "si":
            if len(self.out) >= self.limits.max_shared_strings:
                self._too_many()
            self.text, self.length, self.runs, self.phonetic = [], 0, 0, 0
        elif self.text is None:
            return
        elif local == "r":
            self.runs += 1
            if self.runs > self.limits.max_string_runs:
                raise self.book.error(f"a shared string of more than {self.limits.max_string_runs:,} formatted runs "
                                      f"in {self.name}: refused")
        elif local == "rPh":
            self.phonetic += 1
        elif local == "t":
            self.in_t = not self.phonetic

    def _end(self, tag):
        local = tag.rsplit("}", 1)[-1]
        if local == "si" and self.text is not None:
            self.out.append("".join(self.text))
            self.text = None
        elif local == "rPh":
            self.phonetic -= 1
        elif local == "t":
            self.in_t = False

    def _chars(self, data):
        if self.in_t and self.text is not None:
            self.text.append(data)
            self.length += len(data)
            self.total += len(data)
            if self.length > self.limits.max_string_chars:
                self.book._check_string("".join(self.text), self.name)
            if self.total > self.limits.max_shared_chars:
                raise self.book.error(f"shared strings of more than {self.limits.max_shared_chars:,} characters "
                                      f"together in {self.name}: refused")
