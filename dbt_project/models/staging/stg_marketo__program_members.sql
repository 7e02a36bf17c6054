-- One row per (program, lead) from the latest member export of each program
-- (`marketo.program_members`, one partition per program). The export's fields are chosen by
-- the user: a field left out is a NULL column.
{{ select_marketo_source('program_members', [
    ("programId", "program_id", "bigint"),
    ("leadId", "lead_id", "bigint"),
    ("program", "program_name", "text"),
    ("statusName", "status_name", "text"),
    ("statusReason", "status_reason", "text"),
    ("progressionStatus", "progression_status", "text"),
    ("progressionStatusType", "progression_status_type", "text"),
    ("membershipDate", "membership_date", "timestamptz"),
    ("reachedSuccess", "reached_success", "boolean"),
    ("reachedSuccessDate", "reached_success_date", "timestamptz"),
    ("isExhausted", "is_exhausted", "boolean"),
    ("acquiredBy", "acquired_by", "boolean"),
    ("nurtureCadence", "nurture_cadence", "text"),
    ("nurtureTrack", "nurture_track", "text"),
    ("trackName", "track_name", "text"),
    ("webinarUrl", "webinar_url", "text"),
    ("registrationLikelihood", "registration_likelihood", "text"),
    ("attendanceLikelihood", "attendance_likelihood", "text"),
    ("waitlistPriority", "waitlist_priority", "text"),
    ("email", "email", "email"),
    ("createdAt", "created_at", "timestamptz"),
    ("updatedAt", "updated_at", "timestamptz"),
] + marketo_lineage_columns()) }}
