"""Operations: backups and restores of the warehouse or one tenant, and the uptime probe."""
