\echo Use "ALTER EXTENSION phi_guard UPDATE TO '0.2.0'" to load this file. \quit

-- phi_guard 0.1.0 -> 0.2.0.  There is no separate 0.2.0 install script:
-- CREATE EXTENSION runs phi_guard--0.1.0.sql and then this file, so a fresh
-- install and an upgraded one are the same by construction.
-- Same rules as the install script: new objects with plain CREATE, every
-- reference qualified, every SECURITY DEFINER function pins search_path,
-- nothing executable by PUBLIC unless said so.

------------------------------------------------------------------------
-- Signed request context, tenant row-level security, break-glass (SPEC §5)
------------------------------------------------------------------------

-- end of section: context

------------------------------------------------------------------------
-- Master-key rotation
------------------------------------------------------------------------

-- end of section: master-key rotation

------------------------------------------------------------------------
-- phi_check_config: risky settings for a PHI database
------------------------------------------------------------------------

-- end of section: check_config

------------------------------------------------------------------------
-- Views and reports for people: audit_events, key_status, stats,
-- phi_access_report
------------------------------------------------------------------------

-- end of section: views
