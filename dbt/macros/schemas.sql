{#- Custom schemas are used as named (`marts`), not prefixed with the target schema: the apps and
    the API read `marts.<name>` on every database. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
