{#- Resolution SLA in hours for a complaint severity column, from the sla_hours_* vars. -#}
{% macro sla_hours(severity) -%}
    case {{ severity }}
        when 'critical' then {{ var('sla_hours_critical') }}
        when 'high' then {{ var('sla_hours_high') }}
        when 'medium' then {{ var('sla_hours_medium') }}
        else {{ var('sla_hours_low') }}
    end
{%- endmacro %}
