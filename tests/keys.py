"""Typing into a Textual app under test without ``Pilot.press``'s pause after every key."""

from __future__ import annotations

import unicodedata
from typing import Any

from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key
from textual.pilot import Pilot


def key_event(key: str) -> events.Key:
    """The event ``Pilot.press`` makes of ``key`` (a key name, or one character: "@", "." or "a")."""
    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        character: str | None = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        character = key if len(key) == 1 else None
    return events.Key(key, character)


async def send_keys(pilot: Pilot[Any], *keys: str) -> None:
    """Characters one after another with no pause between them, as a keyboard-wedge scanner or a quick
    typist sends them to the focused field: the same key events ``Pilot.press`` sends, handled in order.
    ``Pilot.press`` waits for the whole process to go idle twice after every key (40 ms a key at best, up to
    a second while an in-process core or a camera works). Only the last key may be one the field or its
    screen acts on by a binding (Enter, F2): a binding's action runs after the keys queued behind it, so
    Ctrl+U before digits would clear them. The caller then waits for what the keys did, a field's value or
    a screen, as after ``Pilot.press``."""
    await pilot.pause()  # what the field does once it has the focus (an Input moves its cursor) comes first
    for key in keys:
        pilot.app.post_message(key_event(key))
    await pilot.pause()
