-- PostgreSQL grants for the role the Waymark service and its commands connect as (here `waymark_app`).
-- Migrations run as the database owner, never as this role. The application may append to the
-- access log but never change or remove a record of it: no UPDATE, DELETE or TRUNCATE on audit_log;
-- the governance record (model_decisions, and the reports audited with it) is append-only too, and
-- the chain's anchor is read-only.
-- Archiving the access log after its retention period is the owner's job (docs/operations.md).
GRANT USAGE ON SCHEMA public TO waymark_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO waymark_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, model_decisions, audit_reports FROM waymark_app;
-- That the database was opened in production is recorded once and never taken back.
REVOKE UPDATE, DELETE, TRUNCATE ON deployment_marks FROM waymark_app;
-- A contact's history is only ever added to (erasure and retention may still remove it).
REVOKE UPDATE ON contact_events FROM waymark_app;
-- Who has held the data scientist's role is kept: the committee's approvals read it (revision 0026).
-- The application records a holding and refreshes when it was last seen, never changes or removes one.
REVOKE UPDATE, DELETE, TRUNCATE ON role_holdings FROM waymark_app;
GRANT UPDATE (last_seen_at) ON role_holdings TO waymark_app;
-- Who cleared a holding, when and why (revision 0028): written by the database owner's command only.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON holding_clearances FROM waymark_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_anchor, alembic_version FROM waymark_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO waymark_app;
