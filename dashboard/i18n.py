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
    # --- Enrolment, kit, discharge (issue 18: dashboard/enrolment*.py, dashboard/kit.py) ---
    "enrol.list": ("Enrolled patients", "Pazienti arruolati"),
    "enrol.fix_errors": (
        "Some fields need correcting: see the messages next to them.",
        "Alcuni campi vanno corretti: vedi i messaggi accanto.",
    ),
    "enrol.edit_title": ("Enrolment of", "Arruolamento di"),
    "enrol.sex": ("Sex", "Sesso"),
    "enrol.sex.female": ("Female", "Femmina"),
    "enrol.sex.male": ("Male", "Maschio"),
    "enrol.sex.other": ("Other", "Altro"),
    "enrol.sex.unknown": ("Unknown", "Non noto"),
    "enrol.consent_date": ("Consent given on", "Consenso espresso il"),
    "enrol.consent_by": ("Recorded by", "Registrato da"),
    "enrol.protocols": (
        "Care protocols and the patient's thresholds",
        "Protocolli di cura e soglie del paziente",
    ),
    "enrol.rule": ("Rule", "Regola"),
    "enrol.thresholds_of": ("Thresholds and schedule:", "Soglie e frequenza:"),
    "enrol.threshold": ("Threshold", "Soglia"),
    "enrol.default": ("Protocol", "Protocollo"),
    "enrol.patient_value": ("This patient", "Questo paziente"),
    "enrol.schedule": ("Measure every", "Misurare ogni"),
    "enrol.every_hours": ("{n} h", "{n} h"),
    "enrol.reason": ("Reason", "Motivo"),
    "enrol.reason_hint": (
        "A value different from the protocol's needs a reason.",
        "Un valore diverso da quello del protocollo richiede un motivo.",
    ),
    "enrol.change_reason": ("Reason for this change", "Motivo della modifica"),
    "enrol.discharge": ("Discharge", "Dimissione"),
    "enrol.discharge_date": ("Discharge date", "Data di dimissione"),
    "enrol.discharge_hint": (
        "Monitoring ends: readings are no longer evaluated and open episodes are resolved "
        "with this reason.",
        "Il monitoraggio termina: le misure non sono più valutate e gli episodi aperti sono "
        "chiusi con questo motivo.",
    ),
    "enrol.discharged": ("Discharged", "Dimesso"),
    "enrol.monitored": ("Monitored", "In monitoraggio"),
    "enrol.state": ("State", "Stato"),
    "enrol.history": ("History of the enrolment", "Storico dell'arruolamento"),
    "enrol.who": ("Who", "Chi"),
    "enrol.what": ("What", "Cosa"),
    "enrol.error.required": (
        "Required, or not a valid choice.",
        "Obbligatorio o scelta non valida.",
    ),
    "enrol.error.code": (
        "Letters, digits and . _ : - (up to 64).",
        "Lettere, cifre e . _ : - (fino a 64).",
    ),
    "enrol.error.date": ("A date, not in the future.", "Una data, non futura."),
    "enrol.error.consent": (
        "The date consent was given is required (not in the future).",
        "La data del consenso è obbligatoria (non futura).",
    ),
    "enrol.error.phone": (
        "International format: + country code and number, e.g. +393331234567.",
        "Formato internazionale: + prefisso e numero, es. +393331234567.",
    ),
    "enrol.error.protocol_required": (
        "Choose at least one protocol.",
        "Scegli almeno un protocollo.",
    ),
    "enrol.error.number": ("A number.", "Un numero."),
    "enrol.error.plausible": (
        "Outside what this measurement can be ({min}-{max}).",
        "Fuori da ciò che questa misura può valere ({min}-{max}).",
    ),
    "enrol.error.below_amber": (
        "The red threshold must be at or below the amber one ({amber}).",
        "La soglia rossa deve essere pari o inferiore a quella ambra ({amber}).",
    ),
    "enrol.error.above_amber": (
        "The red threshold must be at or above the amber one ({amber}).",
        "La soglia rossa deve essere pari o superiore a quella ambra ({amber}).",
    ),
    "enrol.error.every": ("Hours between 1 and 720.", "Ore tra 1 e 720."),
    "enrol.error.reason": ("A reason is required.", "Il motivo è obbligatorio."),
    "enrol.error.protocol": (
        "The protocol refuses these values: {detail}",
        "Il protocollo rifiuta questi valori: {detail}",
    ),
    "enrol.error.detail": ("{detail}", "{detail}"),
    "history.enrol": ("Enrolled", "Arruolato"),
    "history.edit": ("Changed", "Modificato"),
    "history.discharge": ("Discharged", "Dimesso"),
    "history.kit.assign": ("Kit: assigned", "Kit: assegnato"),
    "history.kit.swap": ("Kit: swapped", "Kit: sostituito"),
    "history.kit.return": ("Kit: returned", "Kit: restituito"),
    "kit": ("Kit", "Kit"),
    "kit.model": ("Model", "Modello"),
    "kit.manufacturer": ("Manufacturer", "Produttore"),
    "kit.serial": ("Serial number", "Numero di serie"),
    "kit.address": ("Bluetooth address", "Indirizzo Bluetooth"),
    "kit.paired": ("Assigned on", "Assegnato il"),
    "kit.readings": ("Readings", "Misure"),
    "kit.swap": ("Swap", "Sostituisci"),
    "kit.return": ("Return", "Restituisci"),
    "kit.swapped": ("swapped", "sostituito"),
    "kit.returned": ("returned", "restituito"),
    "kit.add_device": ("Assign a device", "Assegna un dispositivo"),
    "kit.gateway_code": ("Gateway code", "Codice gateway"),
    "kit.assign_gateway": ("Assign a gateway", "Assegna un gateway"),
    "kit.return_gateway": ("Return the whole kit", "Restituisci tutto il kit"),
    "kit.error.address": (
        "Six pairs of hex digits, e.g. AA:BB:CC:DD:EE:01.",
        "Sei coppie di cifre esadecimali, es. AA:BB:CC:DD:EE:01.",
    ),
    "kit.error.form": (
        "The kit change was refused: see the messages below.",
        "La modifica del kit è stata rifiutata: vedi i messaggi sotto.",
    ),
    "card.title": ("Device card", "Tesserino dispositivi"),
    "card.call": (
        "For any problem with the devices call the service centre",
        "Per qualsiasi problema con i dispositivi chiama la centrale operativa",
    ),
    "card.print": (
        "Print this page from the browser (Ctrl+P) for the patient.",
        "Stampa questa pagina dal browser (Ctrl+P) per il paziente.",
    ),
    # --- Period report (issue 18): print view, PDF, readings CSV, validation ---
    "report": ("Report", "Referto"),
    "report.heading": ("Monitoring report", "Relazione di telemonitoraggio"),
    "report.title_of": (
        "Monitoring report {code}, {first} to {last}",
        "Relazione di telemonitoraggio {code}, dal {first} al {last}",
    ),
    "report.period": ("Period", "Periodo"),
    "report.from": ("From", "Dal"),
    "report.to": ("To", "Al"),
    "report.show": ("Show", "Mostra"),
    "report.print": ("Print", "Stampa"),
    "report.pdf": ("PDF", "PDF"),
    "report.csv": ("Readings (CSV)", "Misure (CSV)"),
    "report.fhir": ("FHIR Bundle", "Bundle FHIR"),
    "report.generated": ("Generated", "Generato il"),
    "report.born": ("born", "nato/a il"),
    "report.readings": ("Readings in the period", "Misure nel periodo"),
    "report.plan": ("Monitoring plan", "Piano di monitoraggio"),
    "report.since": ("since", "dal"),
    "report.own": ("patient's own", "personalizzata"),
    "report.own_reason": ("reason", "motivo"),
    "report.thresholds": ("Thresholds", "Soglie"),
    "report.change_of": ("change of {label}", "variazione di {label}"),
    "report.channel.total": ("total score", "punteggio totale"),
    "report.channel.max_parameter": ("one parameter's score", "punteggio di un parametro"),
    "report.schedule": ("Schedule", "Calendario"),
    "report.every_h": ("one reading every {n} h", "una misura ogni {n} h"),
    "report.every_d": ("one reading every {n} days", "una misura ogni {n} giorni"),
    "report.charts": ("Readings and thresholds", "Misure e soglie"),
    "report.summary": ("Summary by measure", "Riepilogo per misura"),
    "report.metric": ("Measure", "Misura"),
    "report.count": ("Readings", "Misure"),
    "report.mean": ("Mean", "Media"),
    "report.min": ("Min", "Min"),
    "report.max": ("Max", "Max"),
    "report.in_range": ("In range (%)", "Nei limiti (%)"),
    "report.flagged": ("Flagged by the device, left out", "Segnalate dal dispositivo, escluse"),
    "report.home_bp": (
        "Home blood pressure, ESH 7-day mean",
        "Pressione domiciliare, media ESH a 7 giorni",
    ),
    "report.home_bp_text": (
        "{sys}/{dia} mmHg over {n} days ({first} to {last}; day 1 of the series discarded). "
        "Home hypertension threshold: 135/85 mmHg (ESH).",
        "{sys}/{dia} mmHg su {n} giorni (dal {first} al {last}; primo giorno della serie "
        "escluso). Soglia domiciliare di ipertensione: 135/85 mmHg (ESH).",
    ),
    "report.home_bp_none": (
        "Not computed: fewer than 3 days of readings in the last 7 days of the period, after "
        "discarding day 1.",
        "Non calcolata: meno di 3 giorni di misure negli ultimi 7 giorni del periodo, escluso "
        "il primo giorno.",
    ),
    "report.glucose": ("Glucose", "Glicemia"),
    "report.glucose_text": (
        "In range 70–180 mg/dL: {tir} % of readings (capillary readings, not continuous "
        "monitoring). ADA level 1 (54–69 mg/dL): {l1}; level 2 (< 54 mg/dL): {l2}; above "
        "180 mg/dL: {above}.",
        "Nei limiti 70–180 mg/dL: {tir} % delle misure (glicemie capillari, non monitoraggio "
        "continuo). Livello 1 ADA (54–69 mg/dL): {l1}; livello 2 (< 54 mg/dL): {l2}; sopra "
        "180 mg/dL: {above}.",
    ),
    "report.adherence": ("Adherence", "Aderenza"),
    "report.adherence_text": (
        "{done} of {expected} expected ({pct} %)",
        "{done} su {expected} attesi ({pct} %)",
    ),
    "report.days_unit": ("days with readings", "giorni con misure"),
    "report.stretches_unit": ("periods with a reading", "intervalli con una misura"),
    "report.episodes": ("Episodes in the period", "Episodi nel periodo"),
    "report.no_episodes": ("No episode in the period.", "Nessun episodio nel periodo."),
    "report.resolved": ("Resolved", "Risolto"),
    "report.calls": ("Calls and notes", "Chiamate e note"),
    "report.devices": ("Devices used", "Dispositivi utilizzati"),
    "report.no_devices": ("No device on record.", "Nessun dispositivo registrato."),
    "report.serial": ("Serial number", "Numero di serie"),
    "report.address": ("Bluetooth address", "Indirizzo Bluetooth"),
    "report.gateway": ("Gateway", "Gateway"),
    "report.model": ("Model", "Modello"),
    "report.kind": ("Device", "Dispositivo"),
    "report.validate": ("Validate this report", "Convalida questo referto"),
    "report.validate_help": (
        "Validating freezes the report as it is now: later readings do not change it.",
        "La convalida congela il referto così com'è ora: misure arrivate dopo non lo cambiano.",
    ),
    "report.validated": (
        "Validated by {by} on {at}. SHA-256 of the PDF: {sha}",
        "Convalidato da {by} il {at}. SHA-256 del PDF: {sha}",
    ),
    "report.validated_by": ("Validated by {by} on {at}.", "Convalidato da {by} il {at}."),
    "report.draft": (
        "Not validated: the figures may change as readings arrive.",
        "Non convalidato: i valori possono cambiare con l'arrivo di nuove misure.",
    ),
    "report.not_validated": (
        "This period has no validated report.",
        "Questo periodo non ha un referto convalidato.",
    ),
    # Access transparency (issue 20): the privacy officer's access report.
    "role.privacy": ("Privacy officer", "Responsabile protezione dati"),
    "access.nav": ("Access reports", "Registro accessi"),
    "access.page": ("Who accessed a patient's data", "Chi ha consultato i dati di un paziente"),
    "access.basis": (
        "Every access to a patient's data, a plain view included, is logged and kept at least "
        "24 months; a patient may ask who accessed it, answered within 15 days (Garante, "
        "guidelines on health dossiers, 2015; EHDS art. 9).",
        "Ogni accesso ai dati di un paziente, anche la sola consultazione, è tracciato e "
        "conservato almeno 24 mesi; il paziente può chiedere chi vi ha avuto accesso, con "
        "risposta entro 15 giorni (Garante, Linee guida sul dossier sanitario, 2015; EHDS art. 9).",
    ),
    "access.patient_code": ("Patient code", "Codice paziente"),
    "access.from": ("From", "Dal"),
    "access.to": ("To", "Al"),
    "access.unknown_code": ("No patient has this code.", "Nessun paziente ha questo codice."),
    "access.title": (
        "Accesses to the data of {code}, {first} – {last}",
        "Accessi ai dati di {code}, {first} – {last}",
    ),
    "access.accesses": ("{n} accesses", "{n} accessi"),
    "access.none": ("No access in this period.", "Nessun accesso nel periodo."),
    "access.col.time": ("Date and time", "Data e ora"),
    "access.col.who": ("Staff member", "Operatore"),
    "access.col.via": ("Care relation", "Relazione di cura"),
    "access.col.what": ("What was accessed", "Cosa è stato consultato"),
    "access.col.from": ("From (address)", "Da (indirizzo)"),
    "access.via.own_gp": ("The patient's GP", "MMG del paziente"),
    "access.via.care_team": ("Care team: {team}", "Équipe di cura: {team}"),
    "access.via.role": ("As {role}", "In qualità di {role}"),
    "access.what.patient.list": ("Patient list", "Elenco pazienti"),
    "access.what.patient.read": ("Patient page", "Scheda paziente"),
    "access.what.patient.episodes.read": ("Episodes", "Episodi"),
    "access.what.patient.vitals.read": ("Vital signs series", "Serie dei parametri vitali"),
    "access.what.episode.read": ("Episode", "Episodio"),
    "access.what.episode.events.read": ("Episode history", "Storia dell'episodio"),
    "access.what.alert.read": ("Alert", "Allarme"),
    "access.what.fhir.patient.read": ("FHIR Patient", "FHIR Patient"),
    "access.what.fhir.observation.search": ("FHIR Observations", "FHIR Observation"),
    "access.what.patient.report.read": ("Period report", "Report del periodo"),
    "access.what.patient.report.pdf": ("Period report (PDF)", "Report del periodo (PDF)"),
    "access.what.patient.report.fhir": ("Period report (FHIR)", "Report del periodo (FHIR)"),
    "access.what.patient.readings.csv": ("Readings export (CSV)", "Esportazione misure (CSV)"),
    "access.what.patient.closing_report.read": ("Closing report", "Relazione di chiusura"),
    "access.what.patient.closing_report.pdf": (
        "Closing report (PDF)",
        "Relazione di chiusura (PDF)",
    ),
    "access.what.patient.closing_report.fhir": (
        "Closing report (FHIR)",
        "Relazione di chiusura (FHIR)",
    ),
    "access.what.triage.read": ("Triage queue", "Coda di triage"),
    "access.what.gateways.offline.read": ("Gateways offline", "Gateway non connessi"),
    "access.what.devices.low_battery.read": ("Devices low on battery", "Dispositivi scarichi"),
    "access.what.notifications.failed.read": ("Failed SMS", "SMS non consegnati"),
    "access.what.enrolments.read": ("Enrolments", "Arruolamenti"),
    "access.what.enrolment.read": ("Enrolment", "Arruolamento"),
    "access.what.device_card.read": ("Device card", "Tesserino dispositivi"),
    "access.what.patient.enrol": ("Enrolled the patient", "Arruolamento del paziente"),
    "access.what.patient.update": ("Changed the enrolment", "Modifica dell'arruolamento"),
    "access.what.patient.discharge": ("Discharged the patient", "Dimissione del paziente"),
    "access.what.episode.claim": ("Took the episode", "Presa in carico dell'episodio"),
    "access.what.episode.outcome": ("Recorded a call", "Registrazione di una chiamata"),
    "access.what.episode.acknowledge": ("Acknowledged the episode", "Presa visione"),
    "access.what.episode.resolve": ("Resolved the episode", "Chiusura dell'episodio"),
    "access.what.episode.escalate": ("Escalated to the GP", "Inoltro al MMG"),
    "access.what.finding.resolve": ("Resolved an alert", "Chiusura di un allarme"),
    "access.what.patient.access_report.csv": (
        "Access report (CSV)",
        "Registro degli accessi (CSV)",
    ),
    "access.what.patient.access_report.pdf": (
        "Access report (PDF)",
        "Registro degli accessi (PDF)",
    ),
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

# Patient reminders (issue 18): the opt-out on the patient page.
TEXTS |= {
    "reminders.label": ("SMS reminders to the patient", "Promemoria SMS al paziente"),
    "reminders.on": ("on", "attivi"),
    "reminders.off": ("off, at the patient's request", "disattivati su richiesta del paziente"),
    "reminders.recorded_by": ("recorded by {who}, {at}", "registrato da {who}, {at}"),
    "reminders.opt_out": ("Record opt-out", "Registra la rinuncia"),
    "reminders.opt_in": ("Turn reminders back on", "Riattiva i promemoria"),
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

# The closing report at discharge (issue 18: dashboard/closing.py, period_reports.close).
TEXTS |= {
    "closing.heading": ("Closing report", "Relazione di fine telemonitoraggio"),
    "closing.title_of": (
        "Closing report {code} {first}–{last}",
        "Relazione di chiusura {code} {first}–{last}",
    ),
    "closing.section": ("End of monitoring", "Fine del telemonitoraggio"),
    "closing.reason": ("Reason for discharge", "Motivo della dimissione"),
    "closing.duration": ("Duration", "Durata"),
    "closing.duration_text": (
        "{days} days, from {first} to {last}",
        "{days} giorni, dal {first} al {last}",
    ),
    "closing.outcomes": ("Outcomes: episodes and how they ended", "Esiti: episodi e loro esito"),
    "closing.episodes": ("Episodes", "Episodi"),
    "closing.ended": ("How they ended", "Come si sono conclusi"),
    "closing.ending.discharge": ("closed at discharge", "chiuso alla dimissione"),
    "closing.ending.sent_to_emergency": ("sent to emergency", "inviato in PS / 112"),
    "closing.ending.advised": ("advised by phone", "consigliato al telefono"),
    "closing.ending.reached": ("patient reached", "paziente raggiunto"),
    "closing.ending.not_reached": ("patient not reached", "paziente non raggiunto"),
    "closing.ending.auto_resolved": (
        "readings back in range",
        "misure rientrate nei limiti",
    ),
    "closing.ending.resolved": ("resolved by a clinician", "risolto da un operatore"),
    "closing.ending.open": ("still open", "ancora aperto"),
    "closing.last_values": ("Last values", "Ultimi valori"),
    "closing.value": ("Value", "Valore"),
    "closing.measured": ("Measured", "Misurato il"),
    "closing.no_readings": ("No reading during monitoring.", "Nessuna misura nel periodo."),
    "closing.frozen_by": (
        "Frozen at discharge by {by} on {at}.",
        "Congelata alla dimissione da {by} il {at}.",
    ),
    "closing.frozen": (
        "Frozen at discharge by {by} on {at} · SHA-256 {sha}",
        "Congelata alla dimissione da {by} il {at} · SHA-256 {sha}",
    ),
    "closing.recorded": (
        "Closing report {first}–{last} frozen by {by} on {at} (SHA-256 {sha}); "
        "the GP and the service centre read it from the patient's page.",
        "Relazione di chiusura {first}–{last} congelata da {by} il {at} (SHA-256 {sha}); "
        "il MMG e la centrale la leggono dalla pagina del paziente.",
    ),
    "closing.link": ("Closing report ({on})", "Relazione di chiusura ({on})"),
    "closing.none": (
        "This patient has no closing report: it is made at discharge.",
        "Questo paziente non ha una relazione di chiusura: si crea alla dimissione.",
    ),
}

# Accessibility and devices (issue 18): the keyboard's way past the top bar.
TEXTS |= {
    "a11y.skip": ("Skip to the page's content", "Vai al contenuto della pagina"),
}

# Reports and equipment, finish (issue 18): the language a report was frozen in; adherence
# when the schedule asks for nothing yet.
TEXTS |= {
    "report.frozen_in": ("Validated text in {language}.", "Testo convalidato in {language}."),
    "language.it": ("Italian", "italiano"),
    "language.en": ("English", "inglese"),
    "adherence.not_due": ("not yet due", "non ancora prevista"),
    "glance.adherence.title_every": (
        "Stretches of {n} days with a {metric} reading, of those the protocol asks for",
        "Intervalli di {n} giorni con una misura di {metric}, su quelli richiesti dal protocollo",
    ),
}

# The GP's list a page at a time (issue 18's speed: the latest values are read for the page).
TEXTS |= {
    "list.pages": ("Pages of the list", "Pagine dell'elenco"),
    "list.showing": ("{first}–{last} of {total}", "{first}–{last} di {total}"),
    "list.previous": ("Previous", "Precedente"),
    "list.next": ("Next", "Successiva"),
    "list.page": ("Page {n}", "Pagina {n}"),
}

# Patient reminders, finished (issue 18): cancelled SMS and why, opt-out by the patient's SMS.
# The cancel reasons are keyed by the words alerts.notify.routing records.
TEXTS |= {
    "sms_cancelled": ("SMS cancelled before sending", "SMS annullati prima dell'invio"),
    "episode resolved before sending": (
        "episode resolved before sending",
        "episodio risolto prima dell'invio",
    ),
    "episode acknowledged before sending": (
        "episode acknowledged before sending",
        "presa visione prima dell'invio",
    ),
    "superseded by a later SMS of the same kind": (
        "superseded by a later SMS of the same kind",
        "sostituito da un SMS successivo dello stesso tipo",
    ),
    "patient discharged before sending": (
        "patient discharged before sending",
        "paziente dimesso prima dell'invio",
    ),
    "patient opted out of reminders before sending": (
        "patient opted out of reminders before sending",
        "il paziente ha rinunciato ai promemoria prima dell'invio",
    ),
    "patient measured before sending": (
        "patient measured before sending",
        "il paziente ha misurato prima dell'invio",
    ),
    "reminders.by_sms": ("the patient, by SMS", "il paziente, via SMS"),
    "sms_inbound": ("SMS received", "SMS ricevuti"),
    "inbound.received": ("Received", "Ricevuto"),
    "inbound.from": ("From", "Da"),
    "inbound.outcome": ("Taken as", "Interpretato come"),
    "inbound.opt_out": ("reminders stopped", "promemoria disattivati"),
    "inbound.opt_in": ("reminders back on", "promemoria riattivati"),
    "inbound.unrecognised": (
        "not a command: answered that nobody reads this number",
        "non è un comando: risposto che nessuno legge questo numero",
    ),
    "inbound.unknown_number": (
        "unknown number: answered that nobody reads it",
        "numero sconosciuto: risposto che nessuno lo legge",
    ),
}

# The gateway's time model (issue 19): a reading's time correction, the equipment page's clocks.
TEXTS |= {
    "time.details": ("Time", "Orario"),
    "time.device_showed": ("device showed {at}", "il dispositivo indicava {at}"),
    "time.zone": ("read in {zone}, UTC{offset}", "letto in {zone}, UTC{offset}"),
    "time.dst": ("summer time", "ora legale"),
    "time.standard": ("standard time", "ora solare"),
    "time.corrected_behind": (
        "device clock {amount} behind: corrected",
        "orologio del dispositivo indietro di {amount}: ora corretta",
    ),
    "time.corrected_ahead": (
        "device clock {amount} ahead: corrected",
        "orologio del dispositivo avanti di {amount}: ora corretta",
    ),
    "time.received": (
        "device time unusable: time of receipt used",
        "ora del dispositivo inutilizzabile: usata l'ora di ricezione",
    ),
    "time.gap": (
        "no such local time (clocks went forward): read as standard time",
        "ora locale inesistente (cambio all'ora legale): letta come ora solare",
    ),
    "time.repeated": (
        "local time that occurs twice (clocks went back)",
        "ora locale ripetuta (cambio all'ora solare)",
    ),
    "time.ignores_dst": (
        "device clock never changes for summer time",
        "l'orologio del dispositivo non passa all'ora legale",
    ),
    "time.min": ("{n} min", "{n} min"),
    "time.h": ("{n} h", "{n} h"),
    "time.d": ("{n} days", "{n} giorni"),
    "clocks.title": ("Device clocks", "Orologi dei dispositivi"),
    "clocks.state": ("Clock", "Orologio"),
    "clocks.off": (
        "{amount} {direction}, cannot be set by the gateway",
        "{direction} di {amount}, il gateway non può regolarlo",
    ),
    "clocks.ahead": ("ahead", "avanti"),
    "clocks.behind": ("behind", "indietro"),
    "clocks.set": (
        "set by the gateway on {at} (was {amount} {direction})",
        "regolato dal gateway il {at} (era {direction} di {amount})",
    ),
}

# Oscuramento (issue 20): the patient's restrictions on the patient page, and what a reader
# from whom some findings are hidden is told instead (dashboard/restrictions.py).
TEXTS |= {
    "restriction.title": ("Hidden data (oscuramento)", "Oscuramento"),
    "restriction.explain": (
        "At the patient's request, data hidden from everyone but you, the GP: the service "
        "centre, reports and exports made by others. The alerts still reach you.",
        "Su richiesta del paziente, dati nascosti a tutti tranne a lei, il MMG: alla centrale, "
        "nei report e nelle esportazioni fatte da altri. Gli allarmi le arrivano comunque.",
    ),
    "restriction.what": ("What", "Cosa"),
    "restriction.kind.protocol": ("Care protocol", "Protocollo di cura"),
    "restriction.kind.metric_category": ("Measurement", "Misura"),
    "restriction.kind.period": ("Period", "Periodo"),
    "restriction.category.blood_pressure": ("Blood pressure", "Pressione arteriosa"),
    "restriction.first": ("From", "Dal"),
    "restriction.last": ("To", "Al"),
    "restriction.requested_on": ("Asked by the patient on", "Richiesto dal paziente il"),
    "restriction.recorded": ("Recorded by", "Registrato da"),
    "restriction.reason": ("Note", "Nota"),
    "restriction.record": ("Record the request", "Registra la richiesta"),
    "restriction.revoke": ("Withdrawn by the patient", "Revocato dal paziente"),
    "restriction.revoked": ("withdrawn: {who}, {at}", "revocato: {who}, {at}"),
    "restriction.withheld": (
        "{n} finding(s) your access does not show (hidden at the patient's request): "
        "call the GP, {gp}.",
        "{n} riscontro/i non visibile/i con il suo accesso (oscurato su richiesta del "
        "paziente): chiami il MMG, {gp}.",
    ),
}


# The gateway's PHG identity and its devices' (issue 19): system ids, Device Information, and
# a device whose own serial is not the kit's.
TEXTS |= {
    "identity.system_id": ("System ID (EUI-64)", "ID di sistema (EUI-64)"),
    "identity.firmware": ("Firmware", "Firmware"),
    "identity.kit_serial": ("Serial in the kit", "Numero di serie nel kit"),
    "identity.reported_serial": ("Serial the device reports", "Numero di serie dal dispositivo"),
    "identity.mismatch_title": (
        "Devices that are not the kit's unit",
        "Dispositivi diversi da quelli del kit",
    ),
    "identity.mismatch_help": (
        "The serial number the device reports differs from the one recorded in the kit: the "
        "device at home was swapped, or the serial was mistyped. Check it and swap the device "
        "in the kit if needed.",
        "Il numero di serie comunicato dal dispositivo è diverso da quello registrato nel kit: "
        "il dispositivo a casa è stato scambiato, o il numero è stato digitato male. "
        "Verificare e, se serve, sostituire il dispositivo nel kit.",
    ),
}

# The read replica on the service status page (issue 21, dashboard.databases).
TEXTS |= {
    "status.replica": ("Read replica", "Replica in lettura"),
    "status.replica_lag": (
        "reachable, {seconds} s ({bytes} bytes) behind the primary",
        "raggiungibile, {seconds} s ({bytes} byte) indietro rispetto al primario",
    ),
    "status.replica_primary": (
        "pages read from the primary meanwhile",
        "nel frattempo le pagine leggono dal primario",
    ),
}

# Oscuramento for the admin (issue 20): the page where an admin records a patient's request to
# hide data on their word, the SMS outbox's mask, and the access report's words for the reads
# and changes of restrictions and the FHIR reads added with them.
TEXTS |= {
    "restriction.admin_page": ("Hidden data (oscuramento)", "Oscuramento dei dati"),
    "restriction.admin_basis": (
        "A patient may ask that a care protocol, a measurement or a period be hidden from "
        "everyone but their GP (Garante, dossier guidelines 2015; EHDS art. 8). Record the "
        "request as the patient made it, with its date; the GP and the alerts still see "
        "everything.",
        "Il paziente può chiedere che un protocollo di cura, una misura o un periodo siano "
        "nascosti a tutti tranne al suo MMG (Garante, linee guida sul dossier 2015; EHDS "
        "art. 8). Registri la richiesta come l'ha fatta il paziente, con la sua data; il MMG "
        "e gli allarmi continuano a vedere tutto.",
    ),
    "restriction.explain_admin": (
        "At the patient's request, data hidden from everyone but their GP: the service centre, "
        "reports and exports made by others. The alerts still reach the GP.",
        "Su richiesta del paziente, dati nascosti a tutti tranne al suo MMG: alla centrale, "
        "nei report e nelle esportazioni fatte da altri. Gli allarmi arrivano comunque al MMG.",
    ),
    "restriction.find": ("Find the patient", "Cerca il paziente"),
    "restriction.enrolment": ("Enrolment", "Arruolamento"),
    "restriction.sms_withheld": (
        "Readings out of range (the message names data hidden at the patient's request)",
        "Valori fuori soglia (il messaggio nomina dati oscurati su richiesta del paziente)",
    ),
    "restriction.sms_withheld_reminder": (
        "Reminder to measure (the message names data hidden at the patient's request)",
        "Promemoria di misura (il messaggio nomina dati oscurati su richiesta del paziente)",
    ),
    "access.what.patient.restrictions.read": (
        "Requests to hide data (oscuramento)",
        "Richieste di oscuramento",
    ),
    "access.what.patient.restriction.record": (
        "Recorded a request to hide data",
        "Registrazione di una richiesta di oscuramento",
    ),
    "access.what.patient.restriction.revoke": (
        "Recorded the withdrawal of a request to hide data",
        "Registrazione della revoca di un oscuramento",
    ),
    "access.what.fhir.observation.read": ("FHIR Observation", "FHIR Observation"),
    "access.what.fhir.patient.everything": (
        "Whole record (FHIR $everything)",
        "Intero fascicolo (FHIR $everything)",
    ),
}

# Issue 19, Local Time Information: a stamp read in the zone and DST offset the device declares.
TEXTS |= {
    "time.device_zone": (
        "read in the zone the device declares, UTC{offset}",
        "letto nel fuso orario dichiarato dal dispositivo, UTC{offset}",
    ),
}

# Issue 19, a device's clock facts on the equipment page and the device card (migration 0027).
TEXTS |= {
    "clocks.ignores_dst": (
        "Clock keeps standard time all year: readings in summer are corrected by one hour",
        "L'orologio resta sull'ora solare tutto l'anno: d'estate le misure sono corrette di un'ora",
    ),
    "clocks.declares": (
        "Clock kept in the zone it declares: UTC{offset}, {season}",
        "Orologio sul fuso orario che dichiara: UTC{offset}, {season}",
    ),
    "clocks.dst_plus": ("summer time +{amount}", "ora legale +{amount}"),
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
