"""Printing identity: read the collector number and set code off a card and decide reprints with it."""

from cardid.printing.number import Number, Reading, agrees, consistent, parse_number, readings_from_text

__all__ = ["Number", "Reading", "agrees", "consistent", "parse_number", "readings_from_text"]
