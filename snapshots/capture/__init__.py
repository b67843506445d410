"""Taking snapshots: take, import, export, schedules and their retention, the snapshot list."""
