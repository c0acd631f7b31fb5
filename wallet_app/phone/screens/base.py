"""What the signed-out screens share: the wallet app they run in, a one-line message under the form, the
first field focused when the screen opens, Enter from field to field (the last one submits the form), a
footer with the keys, and Esc back where there is somewhere to go back to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Static

if TYPE_CHECKING:
    from wallet_app.phone.app import WalletApp

ResultT = TypeVar("ResultT")


class Field(Input):
    """A form field: Enter moves on to the next field (the footer says so while it has focus)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "Next field", id="field_next")]


class SubmitField(Field):
    """A field whose Enter presses the form's button ``#{submits}`` (the last field; the footer says so)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "submit", "Submit", id="field_submit")]

    def __init__(self, *, submits: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submits = submits


class PhoneScreen(Screen[ResultT]):
    """A screen of the phone: ``#message`` (a Static in its compose) shows progress, errors and notices.

    The first field has focus as soon as the screen is shown (not the scrolling container around the form), so
    the first keystrokes land in it. Enter in a :class:`Field` moves to the next field; in a
    :class:`SubmitField` it presses the form's button (and moves on if a field follows). A screen with
    ``escape`` bound to ``back`` goes back to the screen under it."""

    AUTO_FOCUS = "Input"

    @property
    def wallet(self) -> WalletApp:
        return cast("WalletApp", self.app)

    def say(self, text: str, error: bool = True) -> None:
        message = self.query_one("#message", Static)
        message.update(text)
        message.set_class(error, "error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input
        if isinstance(field, SubmitField):
            self.query_one(f"#{field.submits}", Button).press()
        fields = [widget for widget in self.query(Input) if widget.focusable]
        following = fields[fields.index(field) + 1 :] if field in fields else []
        if following:
            self.set_focus(following[0])

    def action_back(self) -> None:
        """Esc: back to the screen under this one (never off the first screen, onto the app's blank one)."""
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


def back_binding(screen: str) -> Binding:
    """``escape`` → ``back``, with an id per screen (``{screen}_back``) so a keymap can move it."""
    return Binding("escape", "back", "Back", id=f"{screen}_back")


def phone_footer() -> Footer:
    """The screen's keys along the bottom. The command palette (ctrl+p) still opens but is not advertised: the
    customer's keys fit a narrow terminal."""
    return Footer(show_command_palette=False)
