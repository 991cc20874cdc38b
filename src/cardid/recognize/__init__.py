"""Recognise cards: image files → decisions with names, sets and numbers (and pictures).

One module per stage a photo goes through: :mod:`~cardid.recognize.inputs` (what the user typed →
photos, decoded ahead in bounded memory), :mod:`~cardid.recognize.recognizer` (photo → cards found,
rectified, embedded, decided), :mod:`~cardid.recognize.results` (typed results and their one JSON
form), :mod:`~cardid.recognize.render` (pictures), :mod:`~cardid.recognize.video` (videos).
"""

from cardid.recognize.inputs import (
    PICTURES_KIND,
    StreamItem,
    expand_inputs,
    photo_key,
    prepare_pictures_dir,
    read_results,
    recognize_files,
    recognize_stream,
)
from cardid.recognize.recognizer import Recognizer, make_detector
from cardid.recognize.render import COLORS, annotate, render_decision, save_decision_png
from cardid.recognize.results import CardResult, PhotoResult, card_json, decision_record
from cardid.recognize.video import VIDEO_EXTENSIONS, is_video, recognize_video

__all__ = [
    "COLORS",
    "PICTURES_KIND",
    "VIDEO_EXTENSIONS",
    "CardResult",
    "PhotoResult",
    "Recognizer",
    "StreamItem",
    "annotate",
    "card_json",
    "decision_record",
    "expand_inputs",
    "is_video",
    "make_detector",
    "photo_key",
    "prepare_pictures_dir",
    "read_results",
    "recognize_files",
    "recognize_stream",
    "recognize_video",
    "render_decision",
    "save_decision_png",
]
