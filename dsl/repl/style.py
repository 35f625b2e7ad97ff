"""The REPL's colours: one palette for bp tokens, shared by the input line
(prompt_toolkit) and the output (rich), plus the styles of prompts,
errors and graph listings.  Colours are the terminal's 16 ANSI ones, so
they follow the user's terminal theme.
"""
from __future__ import annotations

from pygments.token import Comment, Keyword, Name, Number, Operator, String, Token

# bp token → (ANSI colour, attributes); rich and prompt_toolkit spell them differently.
PALETTE: dict = {
    Keyword: ("magenta", "bold"),
    Keyword.Pseudo: ("cyan", "bold"),              # :commands
    Name.Builtin: ("cyan", ""),
    Name.Builtin.Pseudo: ("yellow", "bold"),       # grad, jacobian, …
    Name.Constant: ("yellow", ""),
    Name.Function: ("blue", "bold"),
    Name.Attribute: ("blue", ""),
    Number: ("green", ""),
    String: ("bright_green", ""),
    Comment: ("bright_black", "italic"),
    Operator: ("", ""),
}

# Styles of rich output, by role.
ROLES = {
    "error": "bold red",
    "caret": "bold red",
    "internal": "bold white on red",
    "note": "bright_black",
    "derivative": "yellow",
    "heading": "bold",
    "command": "bold cyan",
}


def rich_style(token) -> str:
    """The rich style of a token (its nearest ancestor in the palette)."""
    while token not in PALETTE and token.parent is not None:
        token = token.parent
    colour, attrs = PALETTE.get(token, ("", ""))
    return " ".join(x for x in (attrs, colour) if x)


def prompt_style():
    """The prompt_toolkit Style: the palette for pygments tokens, and the prompts."""
    from prompt_toolkit.styles import Style, merge_styles, style_from_pygments_dict

    def ansi(colour: str) -> str:
        return "ansi" + colour.replace("_", "") if colour else ""

    tokens = {t: " ".join(x for x in (ansi(c), a) if x) for t, (c, a) in PALETTE.items()}
    return merge_styles([
        style_from_pygments_dict({Token: "", **tokens}),
        Style.from_dict({
            "prompt": "ansigreen bold",
            "continuation": "ansibrightblack",
            "completion-menu.completion": "bg:ansibrightblack ansiwhite",
            "completion-menu.completion.current": "bg:ansiblue ansiwhite bold",
            "completion-menu.meta.completion": "bg:ansiblack ansiwhite",
            "completion-menu.meta.completion.current": "bg:ansiblue ansiwhite",
        }),
    ])
