{#- Personal data is masked in every analyst mart; only target lists carry it in clear. -#}

{% macro mask_phone(column) -%}
    case when {{ column }} is null then null
         else left(regexp_replace({{ column }}, '[^0-9+]', '', 'g'), 3) || '****'
              || right(regexp_replace({{ column }}, '[^0-9]', '', 'g'), 4) end
{%- endmacro %}

{% macro mask_email(column) -%}
    case when {{ column }} is null then null
         else left({{ column }}, 1) || '***@' || split_part({{ column }}, '@', 2) end
{%- endmacro %}

{% macro mask_name(column) -%}
    case when {{ column }} is null then null
         else left({{ column }}, 1) || repeat('*', greatest(length({{ column }}) - 1, 1)) end
{%- endmacro %}
