"""Interface texts in English and Italian; the user's staff.language picks one."""

from __future__ import annotations

from collections.abc import Callable

from telemon.metrics import METRICS

LANGUAGES = ("it", "en")

# key: (English, Italiano)
TEXTS: dict[str, tuple[str, str]] = {
    "app": ("Telemonitoring", "Telemonitoraggio"),
    "login": ("Sign in", "Accedi"),
    "logout": ("Sign out", "Esci"),
    "username": ("Username", "Nome utente"),
    "password": ("Password", "Password"),
    "login.invalid": (
        "Wrong username or password. After 5 failed attempts in a row an account is locked for "
        "15 minutes.",
        "Nome utente o password errati. Dopo 5 tentativi falliti di seguito l'account resta "
        "bloccato per 15 minuti.",
    ),
    "login.throttled": (
        "Too many failed sign-in attempts. Try again in 15 minutes.",
        "Troppi tentativi di accesso falliti. Riprova tra 15 minuti.",
    ),
    "login.busy": (
        "Many people are signing in right now. Try again in a moment.",
        "Molte persone stanno accedendo in questo momento. Riprova tra qualche istante.",
    ),
    "password.change": ("Change password", "Cambia password"),
    "password.current": ("Current password", "Password attuale"),
    "password.new": ("New password", "Nuova password"),
    "password.new_again": ("New password again", "Ripeti la nuova password"),
    "password.policy": (
        "At least {n} characters. Changing it signs you out everywhere else.",
        "Almeno {n} caratteri. Cambiandola esci da tutte le altre sessioni.",
    ),
    "password.must_change": (
        "Your password was set by an administrator. Choose your own to continue.",
        "La tua password è stata impostata da un amministratore. Scegline una tua per continuare.",
    ),
    "password.change_required": (
        "Change the password an administrator set before using the dashboard.",
        "Cambia la password impostata da un amministratore prima di usare la dashboard.",
    ),
    "password.changed": (
        "Password changed. Your other sessions have ended.",
        "Password cambiata. Le altre sessioni sono terminate.",
    ),
    "password.mismatch": (
        "The two new passwords differ.",
        "Le due nuove password non coincidono.",
    ),
    "password.too_short": (
        "The new password needs at least {n} characters.",
        "La nuova password deve avere almeno {n} caratteri.",
    ),
    "password.unchanged": (
        "The new password must differ from the current one.",
        "La nuova password deve essere diversa da quella attuale.",
    ),
    "password.wrong_current": (
        "The current password is wrong. After 5 failed attempts in a row the account is locked "
        "for 15 minutes.",
        "La password attuale è errata. Dopo 5 tentativi falliti di seguito l'account resta "
        "bloccato per 15 minuti.",
    ),
    "login.expired": (
        "Your session has ended. Please sign in again.",
        "La sessione è scaduta. Accedi di nuovo.",
    ),
    "triage": ("Triage queue", "Coda di triage"),
    "patients": ("My patients", "I miei pazienti"),
    "all_patients": ("Patients", "Pazienti"),
    "tasks": ("Not measuring", "Non misura"),
    "equipment": ("Equipment", "Dispositivi"),
    "sms": ("SMS", "SMS"),
    "settings": ("Settings", "Impostazioni"),
    "admin": ("Administration", "Amministrazione"),
    "status": ("System status", "Stato del sistema"),
    "patient": ("Patient", "Paziente"),
    "gp": ("GP", "MMG"),
    "severity": ("Severity", "Gravità"),
    "red": ("Red", "Rosso"),
    "amber": ("Amber", "Ambra"),
    "waiting": ("Waiting", "In attesa da"),
    "reason": ("Reason", "Motivo"),
    "state": ("State", "Stato"),
    "claimed_by": ("Claimed by", "Preso in carico da"),
    "actions": ("Actions", "Azioni"),
    "claim": ("Claim", "Prendi in carico"),
    "acknowledge": ("Acknowledge", "Conferma presa visione"),
    "resolve": ("Resolve", "Risolvi"),
    "escalate": ("Escalate to GP", "Inoltra al MMG"),
    "record_outcome": ("Record call", "Registra chiamata"),
    "note": ("Note", "Nota"),
    "outcome": ("Call outcome", "Esito chiamata"),
    "outcome.reached": ("Reached", "Raggiunto"),
    "outcome.not_reached": ("Not reached", "Non raggiunto"),
    "outcome.advised": ("Advised", "Consigliato"),
    "outcome.sent_to_emergency": ("Sent to emergency", "Inviato in PS / 112"),
    "outcome.auto_resolved": ("Resolved automatically", "Risolta automaticamente"),
    "state.open": ("Open", "Aperto"),
    "state.acknowledged": ("Acknowledged", "Preso visione"),
    "state.escalated": ("Escalated", "Inoltrato"),
    "state.resolved": ("Resolved", "Risolto"),
    "queue.empty": ("The queue is empty.", "La coda è vuota."),
    "no_patients": ("No patients.", "Nessun paziente."),
    "latest": ("Latest readings", "Ultime misure"),
    "open_alerts": ("Open alerts", "Allerte aperte"),
    "none": ("None", "Nessuna"),
    "alert_history": ("Alert history", "Storico allerte"),
    "vitals": ("Vital signs", "Parametri vitali"),
    "no_data": ("No readings in this period", "Nessuna misura nel periodo"),
    "days": ("days", "giorni"),
    "protocols": ("Care protocols", "Protocolli di cura"),
    "gateways": ("Gateways", "Gateway"),
    "gateways_offline": ("Gateways offline", "Gateway non in linea"),
    "low_battery": ("Low battery", "Batteria scarica"),
    "sms_failed": ("Failed SMS", "SMS non consegnati"),
    "sms_outbox": ("SMS outbox", "SMS in uscita"),
    "since": ("Since", "Da"),
    "device": ("Device", "Dispositivo"),
    "battery": ("Battery", "Batteria"),
    "to": ("To", "A"),
    "message": ("Message", "Messaggio"),
    "error": ("Error", "Errore"),
    "save": ("Save", "Salva"),
    "saved": ("Saved.", "Salvato."),
    "language": ("Language", "Lingua"),
    "phone": ("Phone", "Telefono"),
    "quiet_hours": ("Quiet hours (no SMS)", "Ore di silenzio (niente SMS)"),
    "from": ("From", "Dalle"),
    "until": ("Until", "Alle"),
    "users": ("Users and roles", "Utenti e ruoli"),
    "enrol": ("Enrol a patient", "Arruola un paziente"),
    "register_gateway": ("Register a gateway", "Registra un gateway"),
    "role": ("Role", "Ruolo"),
    "active": ("Active", "Attivo"),
    "locked": ("Locked", "Bloccato"),
    "create": ("Create", "Crea"),
    "display_name": ("Full name", "Nome e cognome"),
    "code": ("Code", "Codice"),
    "given_name": ("Given name", "Nome"),
    "family_name": ("Family name", "Cognome"),
    "birth_date": ("Birth date", "Data di nascita"),
    "protocol": ("Care protocol", "Protocollo di cura"),
    "overrides": ("Per-patient thresholds (JSON)", "Soglie personalizzate (JSON)"),
    "care_team": ("Service centre", "Centrale operativa"),
    "devices": (
        "Devices (one per line: kind address)",
        "Dispositivi (uno per riga: tipo indirizzo)",
    ),
    "live": ("Live", "In diretta"),
    "live.paused": (
        "Live updates paused: this page is open in newer tabs. Reload to resume.",
        "Aggiornamenti in diretta sospesi: la pagina è aperta in schede più recenti. Ricarica "
        "per riprenderli.",
    ),
    "events": ("Events", "Eventi"),
    "conflict": ("Someone changed this alert first.", "L'allerta è stata modificata da altri."),
    "not_found": ("Not found.", "Non trovato."),
    "forbidden": ("You are not allowed to see this page.", "Non hai accesso a questa pagina."),
    "server_error": (
        "Something went wrong. It has been logged.",
        "Si è verificato un errore. È stato registrato.",
    ),
    "back": ("Back", "Indietro"),
    "invalid_input": (
        "What you entered cannot be saved. Go back and correct:",
        "Quanto inserito non può essere salvato. Torna indietro e correggi:",
    ),
    "opened": ("Opened", "Aperta"),
    "ago.m": ("{n} min", "{n} min"),
    "ago.h": ("{n} h", "{n} h"),
    "ago.d": ("{n} d", "{n} g"),
    "role.gp": ("GP", "MMG"),
    "role.nurse": ("Nurse", "Infermiere"),
    "role.admin": ("Administrator", "Amministratore"),
    "patients_needing": ("patients with open alerts", "pazienti con allerte aperte"),
    "online": ("online", "in linea"),
    "offline": ("offline", "non in linea"),
    "device.pulse_oximeter": ("Pulse oximeter", "Pulsossimetro"),
    "device.blood_pressure": ("Blood pressure monitor", "Sfigmomanometro"),
    "device.glucometer": ("Glucometer", "Glucometro"),
    "device.thermometer": ("Thermometer", "Termometro"),
    "device.weight_scale": ("Scale", "Bilancia"),
}

# Episodes: a patient's open findings as one row, one badge, one card.
TEXTS |= {
    "episode": ("Episode", "Episodio"),
    "open_episode": ("Open episode", "Episodio aperto"),
    "episode_history": ("Episodes", "Storico episodi"),
    "findings": ("Findings", "Riscontri"),
    "resolve_episode": ("Resolve episode", "Risolvi l'episodio"),
    "resolve_finding": ("Resolve this finding", "Risolvi questo riscontro"),
    "acknowledged_by": ("Acknowledged by", "Presa visione da"),
    "conflict": (
        "Someone changed this episode first.",
        "L'episodio è stato modificato da altri.",
    ),
    "amber_digest": (
        "Daily summary of amber episodes",
        "Riepilogo giornaliero degli episodi gialli",
    ),
    "amber_digest_at": ("Send at", "Invia alle"),
    "amber_digest_help": (
        "Leave empty to be texted about each amber episode nobody took in time. With a time, "
        "they come together in one SMS a day; red episodes are always texted at once.",
        "Lasciare vuoto per ricevere un SMS per ogni episodio giallo non preso in carico in "
        "tempo. Con un orario arrivano insieme in un solo SMS al giorno; gli episodi rossi sono "
        "sempre inviati subito.",
    ),
    "recipient.gp": ("GP", "MMG"),
    "recipient.service_centre": ("Duty phone", "Telefono di turno"),
    "recipient.patient": ("Patient", "Paziente"),
}

# The service status page (/status), for admins.
TEXTS |= {
    "status.ok": ("All services reachable", "Tutti i servizi raggiungibili"),
    "status.unavailable": ("A service is unavailable", "Un servizio non è disponibile"),
    "status.database": ("Database", "Database"),
    "status.reachable": ("reachable", "raggiungibile"),
    "status.unreachable": ("unreachable", "non raggiungibile"),
    "status.schema": ("Schema version", "Versione dello schema"),
    "status.storage": ("{backend} storage", "archiviazione {backend}"),
    "status.patients": ("Patients enrolled", "Pazienti arruolati"),
    "status.gateways": ("Gateways online", "Gateway in linea"),
    "status.of": ("{n} of {total}", "{n} su {total}"),
    "status.readings": ("Readings, last 24 h", "Misure, ultime 24 h"),
    "status.open_alerts": ("Open alerts", "Allerte aperte"),
    "status.rejected": ("Rejected input, last 24 h", "Dati rifiutati, ultime 24 h"),
    "status.broker": ("MQTT broker", "Broker MQTT"),
    "status.not_configured": ("not configured", "non configurato"),
}

# The GP's list at a glance, tags and the monitoring plan (issue 18).
TEXTS |= {
    "glance.need": ("Show", "Mostra"),
    "glance.need.all": ("All", "Tutti"),
    "glance.need.attention": ("Needs attention", "Da valutare"),
    "glance.need.not_measuring": ("Not measuring", "Non misura"),
    "glance.not_measuring": ("Not measuring", "Non misura"),
    "glance.tag": ("Tag", "Etichetta"),
    "glance.filter": ("Filter", "Filtra"),
    "glance.clear": ("Clear filters", "Togli i filtri"),
    "glance.adherence": ("Days with readings", "Giorni con misure"),
    "glance.adherence.title": (
        "Days with a {metric} reading, of the days the protocol asks for",
        "Giorni con una misura di {metric}, sui giorni richiesti dal protocollo",
    ),
    "glance.days7": ("7 d", "7 gg"),
    "glance.days30": ("30 d", "30 gg"),
    "glance.last_reading": ("Last reading", "Ultima misura"),
    "glance.never": ("none in 30 days", "nessuna in 30 giorni"),
    "glance.trend.up": ("rising against the week before", "in aumento sulla settimana prima"),
    "glance.trend.down": ("falling against the week before", "in calo sulla settimana prima"),
    "glance.trend.steady": ("steady against the week before", "stabile sulla settimana prima"),
    "glance.tag.new": ("New tag", "Nuova etichetta"),
    "glance.tag.add": ("Add tag", "Aggiungi etichetta"),
    "glance.tag.remove": ("Remove tag {tag}", "Togli l'etichetta {tag}"),
    "glance.plan": ("Monitoring plan", "Piano di monitoraggio"),
    "glance.plan.schedule": (
        "{metric}: one reading every {every}",
        "{metric}: una misura ogni {every}",
    ),
    "glance.plan.own": ("this patient's own threshold", "soglia propria del paziente"),
    "glance.still_open": ("still open", "ancora aperto"),
}


# An alert's history, one line per event kind: the engine's, the notifier's, and the actions of
# the people who worked on it (dashboard.alert_actions).
EVENTS: dict[str, tuple[str, str]] = {
    "opened": ("Opened", "Aperta"),
    "confirmed": ("Confirmed by a further reading", "Confermata da un'altra misura"),
    "worsened": ("Worsened", "Aggravata"),
    "downgraded": ("Readings less severe", "Valori meno gravi"),
    "auto_resolved": (
        "Resolved automatically: readings back in range",
        "Risolta automaticamente: valori rientrati",
    ),
    "escalated": ("Escalated: not acknowledged in time", "Inoltrata: non presa in carico in tempo"),
    "finding_joined": ("Another finding joined", "Nuovo riscontro aggiunto"),
    "finding_resolved": ("One finding resolved", "Un riscontro risolto"),
    "snooze_expired": (
        "Reopened after the acknowledgement lapsed",
        "Riaperta: presa visione scaduta",
    ),
    "notified": ("SMS sent", "SMS inviato"),
    "notify_queued": ("SMS queued", "SMS in coda"),
    "notify_cancelled": ("SMS cancelled, no longer needed", "SMS annullato, non più necessario"),
    "notify_delivered": ("SMS delivered", "SMS consegnato"),
    "notify_failed": ("SMS not delivered", "SMS non consegnato"),
    "claim": ("Claimed", "Presa in carico"),
    "outcome": ("Call recorded", "Chiamata registrata"),
    "acknowledge": ("Acknowledged", "Presa visione"),
    "resolve": ("Resolved", "Risolta"),
    "escalate": ("Escalated to the GP", "Inoltrata al MMG"),
}


def event_label(kind: str, language: str) -> str:
    """An event in words; a kind not in the table yet reads as words, never as its key."""
    pair = EVENTS.get(kind)
    if pair is None:
        return kind.replace("_", " ").capitalize()
    return pair[1] if language == "it" else pair[0]


def translator(language: str) -> Callable[..., str]:
    index = 1 if language == "it" else 0

    def t(key: str, **values: object) -> str:
        pair = TEXTS.get(key)
        text = pair[index] if pair else key
        return text.format(**values) if values else text

    return t


def metric_label(key: str | None, language: str) -> str:
    if key is None or key not in METRICS:
        return key or ""
    return METRICS[key].label("it" if language == "it" else "en")
