{#- Tenancy of the marts (docs/dbt.md). dbt runs as the database owner, which bypasses row-level security: it
    reads every tenant's rows and builds every tenant's marts in one run. Each mart carries tenant_id and gets the
    star tables' policy (migration 0014), so whoever reads it as another role - the owner's worker role of the
    pipeline and CLI, the apps' role - sees the rows of the tenant of its transaction only. -#}

{% macro priceintel_tenant_policy(relation) -%}
    ALTER TABLE {{ relation }} ENABLE ROW LEVEL SECURITY;
    DROP POLICY IF EXISTS tenant_isolation ON {{ relation }};
    CREATE POLICY tenant_isolation ON {{ relation }}
        USING (tenant_id = (SELECT priceintel_tenant())) WITH CHECK (tenant_id = (SELECT priceintel_tenant()));
    COMMENT ON POLICY tenant_isolation ON {{ relation }} IS 'the current tenant''s rows (priceintel_tenant(), migration 0014)'
{%- endmacro %}

{#- USAGE on the schema and SELECT on its tables for the apps' role and the owner's worker role (named as in
    priceintel.db.roles / db.tenancy, granted only when they exist) and var('reader_roles'); default privileges
    make every table a later run creates readable at once. -#}
{% macro priceintel_grant_readers(schema) -%}
    {%- set extra = var('reader_roles', []) or [] -%}
    CREATE SCHEMA IF NOT EXISTS {{ adapter.quote(schema) }};
    DO $priceintel$
    DECLARE
        reader text;
    BEGIN
        FOREACH reader IN ARRAY ARRAY[
            left(current_database(), 59) || '_app', left(current_database(), 56) || '_worker'
            {%- for role in extra %}, {{ "'" ~ (role | replace("'", "''")) ~ "'" }}{% endfor %}
        ]::text[] LOOP
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = reader);
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', {{ "'" ~ schema ~ "'" }}, reader);
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', {{ "'" ~ schema ~ "'" }}, reader);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                           {{ "'" ~ schema ~ "'" }}, reader);
        END LOOP;
    END
    $priceintel$
{%- endmacro %}
