"""Understanding: text or voice transcript -> intent, time expression and lead.

`understand` classifies one utterance (the confirmation resolver runs first while a proposal is
pending); `resolve_when` turns the time expression into a date and time against the engine's clock.
"""

from .intents import Intent, Understanding, understand
from .times import When, resolve_when

__all__ = ["Intent", "Understanding", "When", "resolve_when", "understand"]
