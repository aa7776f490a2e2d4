"""What a reminder SMS says: which measurement to take, in the patient's language, nothing else.

A patient's phone is read by whoever picks it up, and the patient has no clinical training: a
reminder names the measurement and the device, never a value, a threshold, an alert or the
condition. It tells how to stop them, with the word the inbound-SMS webhook knows
(``telemon.patient_sms``). It fits one GSM-7 segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from telemon.gsm7 import gsm7_length, to_gsm7
from telemon.metrics import Language
from telemon.patient_sms import STOP_WORD

MAX_REMINDER_LENGTH = 160  # one GSM-7 segment

TEMPLATES: Mapping[Language, str] = MappingProxyType(
    {
        "it": "Telemon: è ora di misurare {measure}. Se l'ha già fatto, ignori questo "
        "messaggio. Per non ricevere promemoria risponda {stop}.",
        "en": "Telemon reminder: time to measure {measure}. If you have just done it, please "
        "ignore this. To stop reminders, reply {stop}.",
    }
)

# The measurement in a patient's words, by the metric a not-measuring rule watches.
MEASURES: Mapping[str, Mapping[Language, str]] = MappingProxyType(
    {
        "spo2": MappingProxyType(
            {"it": "la saturazione con il saturimetro", "en": "your oxygen with the oximeter"}
        ),
        "glucose": MappingProxyType(
            {"it": "la glicemia con il glucometro", "en": "your blood sugar with the meter"}
        ),
        "body_weight": MappingProxyType(
            {"it": "il peso con la bilancia", "en": "your weight on the scale"}
        ),
        "systolic": MappingProxyType(
            {"it": "la pressione con il misuratore", "en": "your blood pressure with the cuff"}
        ),
        "body_temperature": MappingProxyType(
            {"it": "la temperatura con il termometro", "en": "your temperature"}
        ),
    }
)
ANY_MEASURE: Mapping[Language, str] = MappingProxyType(
    {"it": "i parametri con i suoi dispositivi", "en": "your readings with your devices"}
)


def render_reminder(metric: str, language: Language) -> str:
    """The reminder's text, in GSM-7, at most one segment."""
    measure = MEASURES.get(metric, ANY_MEASURE)[language]
    text = to_gsm7(TEMPLATES[language].format(measure=measure, stop=STOP_WORD[language]))
    if gsm7_length(text) > MAX_REMINDER_LENGTH:
        raise ValueError(f"reminder for {metric!r} in {language} is longer than one segment")
    return text
