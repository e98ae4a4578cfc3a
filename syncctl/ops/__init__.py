"""Running syncctl unattended: schedules, health checks, metrics and log formats."""
