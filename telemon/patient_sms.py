"""What a patient may text back to a reminder, and what telemon answers.

One table for both ends: the reminder (``alerts.reminders.texts``) names the stop word, the
dashboard's inbound-SMS webhook (``dashboard.patient_sms``) reads the reply, so a reminder never
names a word the webhook does not know. Nobody reads these messages as they arrive, and a phone
is read by whoever holds it: the answers carry nothing clinical, and one that is no command says
that nobody reads it and where to turn instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from telemon.gsm7 import gsm7_length, to_gsm7
from telemon.metrics import Language

Command = Literal["opt_out", "opt_in"]
# What telemon made of an inbound SMS (inbound_sms.outcome).
Outcome = Literal["opt_out", "opt_in", "unrecognised", "unknown_number"]

# Per language, as patients write them; matched case- and space-insensitively, in any language
# (an Italian speaker may well write STOP, and Twilio's own opt-out handling knows STOP/START).
KEYWORDS: Mapping[Language, Mapping[str, Command]] = MappingProxyType(
    {
        "it": MappingProxyType(
            {
                "STOP": "opt_out",
                "ARRESTA": "opt_out",
                "STOP PROMEMORIA": "opt_out",
                "START": "opt_in",
                "RIPRENDI": "opt_in",
            }
        ),
        "en": MappingProxyType({"STOP": "opt_out", "STOP REMINDERS": "opt_out", "START": "opt_in"}),
    }
)
# The words the texts name: to stop, and to start again.
STOP_WORD: Mapping[Language, str] = MappingProxyType({"it": "STOP", "en": "STOP"})
START_WORD: Mapping[Language, str] = MappingProxyType({"it": "RIPRENDI", "en": "START"})

REPLIES: Mapping[Outcome, Mapping[Language, str]] = MappingProxyType(
    {
        "opt_out": MappingProxyType(
            {
                "it": "Telemon: non riceverà più promemoria. Per riattivarli risponda {start}.",
                "en": "Telemon: you will get no more reminders. "
                "To turn them back on, reply {start}.",
            }
        ),
        "opt_in": MappingProxyType(
            {
                "it": "Telemon: promemoria riattivati. Per non riceverli risponda {stop}.",
                "en": "Telemon: reminders are back on. To stop them, reply {stop}.",
            }
        ),
        "unrecognised": MappingProxyType(
            {
                "it": "Telemon: nessuno legge i messaggi a questo numero. Per la sua salute "
                "chiami il suo medico, in emergenza il 112. Per non ricevere promemoria "
                "risponda {stop}.",
                "en": "Telemon: nobody reads messages to this number. About your health call "
                "your doctor, in an emergency 112. To stop reminders, reply {stop}.",
            }
        ),
        "unknown_number": MappingProxyType(
            {
                "it": "Telemon: nessuno legge i messaggi a questo numero. "
                "In emergenza chiami il 112.",
                "en": "Telemon: nobody reads messages to this number. In an emergency call 112.",
            }
        ),
    }
)


def _folded(text: str) -> str:
    # Case and spaces do not count, nor the full stop or exclamation a phone may add.
    return "".join(text.split()).strip(".!").upper()


_COMMANDS: Mapping[str, Command] = MappingProxyType(
    {_folded(word): command for words in KEYWORDS.values() for word, command in words.items()}
)


def command_of(text: str) -> Command | None:
    """The command a patient's SMS is, or None when it is none (any other text)."""
    return _COMMANDS.get(_folded(text))


def reply_for(outcome: Outcome, language: Language) -> str:
    """The answer to an inbound SMS, in GSM-7 and one segment."""
    text = to_gsm7(
        REPLIES[outcome][language].format(stop=STOP_WORD[language], start=START_WORD[language])
    )
    if gsm7_length(text) > 160:
        raise ValueError(f"the {outcome} reply in {language} is longer than one segment")
    return text
