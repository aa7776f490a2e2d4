"""Status flags an observation may carry, as one controlled vocabulary.

Device bits (PLX measurement and sensor status, BP measurement status, glucose sensor status
annunciation...) are mapped to these names by the gateway's decoders; the gateway adds its own
(time source, clock skew). Storage, rules and the dashboard only ever see these names.
"""

from __future__ import annotations

from types import MappingProxyType

FLAGS: MappingProxyType[str, str] = MappingProxyType(
    {
        # Added by the gateway
        "gateway_time": "no device timestamp; measured_at is the gateway receive time",
        "device_clock_skew": "device clock differs from the gateway clock beyond tolerance",
        "from_device_storage": "the device stored the reading and sent it later",
        "local_time_gap": "device local time in the spring-forward hour: read as standard time",
        "local_time_ambiguous": "device local time in the repeated autumn hour: one was chosen",
        # Measurement state (PLX measurement status)
        "measurement_ongoing": "measurement still in progress",
        "early_estimate": "early estimate, not a final value",
        "validated_data": "data validated by the device",
        "fully_qualified_data": "data fully qualified by the device",
        "demonstration_data": "demonstration data, not from a patient",
        "testing_data": "test data, not from a patient",
        "calibration_ongoing": "calibration in progress",
        "measurement_unavailable": "measurement unavailable",
        "questionable_measurement": "questionable measurement detected",
        "invalid_measurement": "invalid measurement detected",
        # Device and sensor status (PLX)
        "extended_display_update": "extended display update ongoing",
        "equipment_malfunction": "equipment malfunction detected",
        "signal_processing_irregularity": "signal processing irregularity detected",
        "inadequate_signal": "inadequate signal detected",
        "poor_signal": "poor signal detected",
        "low_perfusion": "low perfusion detected",
        "erratic_signal": "erratic signal detected",
        "nonpulsatile_signal": "non-pulsatile signal detected",
        "questionable_pulse": "questionable pulse detected",
        "signal_analysis_ongoing": "signal analysis ongoing",
        "sensor_interference": "sensor interference detected",
        "sensor_unconnected_to_user": "sensor not connected to the user (finger out)",
        "unknown_sensor": "unknown sensor connected",
        "sensor_displaced": "sensor displaced",
        "sensor_malfunction": "sensor malfunctioning",
        "sensor_disconnected": "sensor disconnected",
        # Blood pressure measurement status
        "body_movement": "body movement during measurement",
        "cuff_too_loose": "cuff fit too loose",
        "irregular_pulse": "irregular pulse detected",
        "pulse_above_range": "pulse rate above the device's upper limit",
        "pulse_below_range": "pulse rate below the device's lower limit",
        "improper_position": "improper measurement position",
        # Glucose sensor status annunciation
        "battery_low": "device battery low at measurement time",
        "sample_insufficient": "sample size insufficient",
        "strip_insertion_error": "strip insertion error",
        "strip_type_incorrect": "strip type incorrect for the device",
        "result_above_range": "result higher than the device can process",
        "result_below_range": "result lower than the device can process",
        "sensor_temperature_high": "sensor temperature too high",
        "sensor_temperature_low": "sensor temperature too low",
        "sensor_read_interrupted": "sensor read interrupted (strip pulled too soon)",
        "general_device_fault": "general device fault",
        "time_fault": "time fault in the device",
    }
)

# Flags that make a value unfit for clinical rules: stored for the record, skipped by alerts.
UNRELIABLE_FLAGS: frozenset[str] = frozenset(
    {
        "measurement_ongoing",
        "early_estimate",
        "demonstration_data",
        "testing_data",
        "calibration_ongoing",
        "measurement_unavailable",
        "invalid_measurement",
        "equipment_malfunction",
        "sensor_unconnected_to_user",
        "sensor_displaced",
        "sensor_malfunction",
        "sensor_disconnected",
        "unknown_sensor",
        "sample_insufficient",
        "strip_insertion_error",
        "strip_type_incorrect",
        "sensor_read_interrupted",
        "general_device_fault",
    }
)
