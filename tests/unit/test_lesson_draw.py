"""Lesson 01's path picture reaches a screen reader: its output carries a text alternative."""

from __future__ import annotations

import base64
import html

from portbinding.lesson.draw import picture_bundle


def test_the_path_picture_is_shown_with_its_words_as_alt_text() -> None:
    alt = 'host port 8000: does not hold; the engine: "-p 127.0.0.1:8000:8000" <holds>'
    bundle = picture_bundle(b"\x89PNG fake", alt)
    shown = bundle["text/html"]
    assert f'alt="{html.escape(alt)}"' in shown, f"the image has no (escaped) alt text: {shown}"
    assert "<holds>" not in shown, f"the alt text was not escaped: {shown}"
    assert base64.b64decode(bundle["image/png"]) == b"\x89PNG fake", "the PNG itself was not kept"
    assert bundle["text/plain"] == alt, "a plain-text front end gets no words for the picture"
