"""Behaviour of nurture.templating: tokens, fallbacks, missing markers, sandbox."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from nurture.templating import (
    ALLOWED_ROOTS,
    Rendered,
    TemplateRenderProblem,
    TemplateSecurityProblem,
    TemplateSyntaxProblem,
    check_template,
    missing_marker,
    render,
)


def ctx(**contact: Any) -> dict[str, Any]:
    return {
        "contact": contact,
        "company": {"name": "Analytical Engines Ltd"},
        "sender": {"name": "Charles Babbage", "email": "charles@example.com"},
    }


ADA = ctx(firstname="Ada", lastname="Lovelace")


class TestTokens:
    def test_plain_token(self) -> None:
        assert render("Hi {{ contact.firstname }}!", ADA) == Rendered("Hi Ada!", ())

    def test_nested_roots(self) -> None:
        result = render("{{ sender.name }} at {{ company.name }} <{{ sender.email }}>", ADA)
        assert result.text == "Charles Babbage at Analytical Engines Ltd <charles@example.com>"
        assert result.missing == ()

    def test_item_syntax(self) -> None:
        assert render('{{ contact["firstname"] }}', ADA).text == "Ada"

    def test_non_string_values(self) -> None:
        context = {"deal": {"amount": 1500, "closed": False, "employees": 0}}
        assert render("{{ deal.amount }} {{ deal.closed }} {{ deal.employees }}", context).text == "1500 False 0"

    def test_nested_property_dicts(self) -> None:
        context = {"contact": {"address": {"city": "London"}}}
        assert render("{{ contact.address.city }}", context).text == "London"

    def test_string_root(self) -> None:
        context = {"unsubscribe_url": "https://example.com/u/123"}
        assert render("Unsubscribe: {{ unsubscribe_url }}", context).text == "Unsubscribe: https://example.com/u/123"

    def test_property_names_win_over_dict_methods(self) -> None:
        context = {"contact": {"items": "three widgets"}}
        assert render("{{ contact.items }}", context).text == "three widgets"
        # A dict method name that is not a property is a missing token, not a method.
        result = render("{{ contact.keys }}", context)
        assert result.missing == ("contact.keys",)

    def test_filters_work(self) -> None:
        assert render("{{ contact.firstname | upper }}", ADA).text == "ADA"
        assert render("{{ contact.firstname.lower() }}", ADA).text == "ada"

    def test_conditionals_and_loops(self) -> None:
        source = "{% if contact.firstname %}Hi {{ contact.firstname }}{% else %}Hello{% endif %}"
        assert render(source, ADA).text == "Hi Ada"
        assert render(source, ctx()).text == "Hello"
        assert render(source, ctx()).missing == ()
        assert render("{% for k, v in contact | dictsort %}{{ k }}={{ v }};{% endfor %}", ADA).text == (
            "firstname=Ada;lastname=Lovelace;"
        )

    def test_trailing_newline_kept(self) -> None:
        assert render("Hi {{ contact.firstname }}\n", ADA).text == "Hi Ada\n"

    def test_extra_context_keys_are_ignored(self) -> None:
        result = render("{{ contact.firstname }}", {**ADA, "secret": {"token": "x"}})
        assert result.text == "Ada"


class TestFallbacks:
    @pytest.mark.parametrize("value", ["", "   ", None])
    def test_default_used_for_empty_and_none(self, value: Any) -> None:
        result = render('Hi {{ contact.firstname | default("there") }}', ctx(firstname=value))
        assert result == Rendered("Hi there", ())

    def test_default_used_for_absent_property(self) -> None:
        assert render('Hi {{ contact.firstname | default("there") }}', ctx()) == Rendered("Hi there", ())

    def test_default_not_used_for_present_value(self) -> None:
        assert render('Hi {{ contact.firstname | default("there") }}', ADA).text == "Hi Ada"

    def test_d_alias(self) -> None:
        assert render('{{ contact.firstname | d("there") }}', ctx(firstname="")).text == "there"

    @pytest.mark.parametrize("value", ["", None, "  "])
    def test_or_shorthand(self, value: Any) -> None:
        result = render('Hi {{ contact.firstname or "there" }}', ctx(firstname=value))
        assert result == Rendered("Hi there", ())
        assert render('Hi {{ contact.firstname or "there" }}', ADA).text == "Hi Ada"

    def test_zero_and_false_are_values(self) -> None:
        context = {"company": {"employees": 0, "public": False}}
        assert render('{{ company.employees | default("n/a") }}', context).text == "0"
        assert render('{{ company.public | default("n/a") }}', context).text == "False"
        # Jinja's explicit boolean mode is still available.
        assert render('{{ company.employees | default("n/a", true) }}', context).text == "n/a"

    def test_fallback_for_missing_root(self) -> None:
        assert render('{{ deal.name | default("your deal") }}', ADA) == Rendered("your deal", ())

    def test_fallback_for_nested_missing(self) -> None:
        result = render('{{ contact.address.city | default("your city") }}', ADA)
        assert result == Rendered("your city", ())

    def test_fallback_can_be_another_token(self) -> None:
        result = render("{{ contact.nickname | default(contact.firstname) }}", ADA)
        assert result == Rendered("Ada", ())


class TestMissing:
    def test_missing_without_fallback_is_marked_and_listed(self) -> None:
        result = render("Hi {{ contact.firstname }},", ctx())
        assert result.text == "Hi [[MISSING TOKEN - CONTACT.FIRSTNAME]],"
        assert result.missing == ("contact.firstname",)

    @pytest.mark.parametrize("value", ["", None, " \t"])
    def test_empty_and_none_count_as_missing(self, value: Any) -> None:
        result = render("Hi {{ contact.firstname }}", ctx(firstname=value))
        assert result.text == "Hi " + missing_marker("contact.firstname")
        assert result.missing == ("contact.firstname",)

    def test_missing_root(self) -> None:
        result = render("{{ deal.name }} / {{ unsubscribe_url }}", ADA)
        assert result.text == "[[MISSING TOKEN - DEAL.NAME]] / [[MISSING TOKEN - UNSUBSCRIBE_URL]]"
        assert result.missing == ("deal.name", "unsubscribe_url")

    def test_blank_root_value_counts_as_missing(self) -> None:
        result = render("{{ unsubscribe_url }}", {"unsubscribe_url": ""})
        assert result.missing == ("unsubscribe_url",)

    def test_nested_missing_reports_full_path(self) -> None:
        result = render("{{ contact.address.city }} {{ sender.signature.html }}", ADA)
        assert result.missing == ("contact.address.city", "sender.signature.html")
        assert "[[MISSING TOKEN - CONTACT.ADDRESS.CITY]]" in result.text

    def test_missing_inside_existing_nested_dict(self) -> None:
        result = render("{{ contact.address.zip }}", {"contact": {"address": {"city": "London"}}})
        assert result.missing == ("contact.address.zip",)

    def test_listed_once_in_order_of_appearance(self) -> None:
        source = "{{ contact.lastname }} {{ contact.firstname }} {{ contact.lastname }} {{ company.name }}"
        result = render(source, {"company": {"name": "Acme"}})
        assert result.missing == ("contact.lastname", "contact.firstname")
        assert result.text.count("[[MISSING TOKEN - CONTACT.LASTNAME]]") == 2

    def test_method_call_on_missing_value_reports_the_value(self) -> None:
        result = render("{{ contact.firstname.title() }}", ctx())
        assert result.missing == ("contact.firstname",)

    def test_only_some_missing(self) -> None:
        result = render("{{ contact.firstname }} {{ contact.phone }}", ADA)
        assert result.text == "Ada [[MISSING TOKEN - CONTACT.PHONE]]"
        assert result.missing == ("contact.phone",)

    def test_missing_list_is_per_render(self) -> None:
        assert render("{{ contact.x }}", ADA).missing == ("contact.x",)
        assert render("{{ contact.y }}", ADA).missing == ("contact.y",)
        assert render("{{ contact.firstname }}", ADA).missing == ()

    def test_concurrent_renders_do_not_share_missing_names(self) -> None:
        workers, tokens = 6, 150
        sources = [" ".join(f"{{{{ contact.t{n}_{i} }}}}" for i in range(tokens)) for n in range(workers)]
        for source in sources:  # compile up front so the renders overlap
            render(source, {})
        barrier = threading.Barrier(workers)

        def job(n: int) -> Rendered:
            barrier.wait()
            return render(sources[n], {"contact": {}})

        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # force thread switches in the middle of renders
        try:
            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(job, range(workers)))
        finally:
            sys.setswitchinterval(previous)
        for n, result in enumerate(results):
            assert result.missing == tuple(f"contact.t{n}_{i}" for i in range(tokens))

    def test_arithmetic_on_missing_value_is_a_render_problem(self) -> None:
        with pytest.raises(TemplateRenderProblem, match="line 2: .*contact.score"):
            render("Score:\n{{ contact.score + 1 }}", ADA)


class TestHtml:
    context = {"contact": {"firstname": "<b>Ada</b> & co"}, "company": {"name": "O'Reilly"}}

    def test_escaping_on_for_html(self) -> None:
        result = render("<p>Hi {{ contact.firstname }}</p>", self.context, html=True)
        assert result.text == "<p>Hi &lt;b&gt;Ada&lt;/b&gt; &amp; co</p>"

    def test_escaping_off_for_text(self) -> None:
        assert render("Hi {{ contact.firstname }}", self.context).text == "Hi <b>Ada</b> & co"

    def test_fallback_literal_is_escaped_in_html(self) -> None:
        result = render('{{ contact.lastname | default("<friend>") }}', self.context, html=True)
        assert result.text == "&lt;friend&gt;"

    def test_missing_marker_in_html(self) -> None:
        result = render("<p>{{ contact.lastname }}</p>", self.context, html=True)
        assert result.text == "<p>[[MISSING TOKEN - CONTACT.LASTNAME]]</p>"
        assert result.missing == ("contact.lastname",)

    def test_same_source_cached_separately_per_mode(self) -> None:
        source = "{{ company.name }}"
        assert render(source, self.context, html=True).text == "O&#39;Reilly"
        assert render(source, self.context, html=False).text == "O'Reilly"
        assert render(source, self.context, html=True).text == "O&#39;Reilly"


class TestCheckTemplate:
    def test_valid_template_has_no_problems(self) -> None:
        source = (
            'Hi {{ contact.firstname | default("there") }},\n'
            "{% if company.name %}I see {{ company.name }}{% endif %}\n"
            "{% set greeting = 'Best' %}{{ greeting }}, {{ sender.name }}\n"
            "{% for t in deal.tags %}{{ t }}{% endfor %}\n"
            "{{ ticket.subject }} {{ enrollment.step }} {{ unsubscribe_url }}"
        )
        assert check_template(source) == []

    def test_syntax_error_names_the_line(self) -> None:
        problems = check_template("Hi {{ contact.firstname }},\n\nThanks {{ sender.name }\n")
        assert len(problems) == 1
        assert problems[0].startswith("line 3: ")

    def test_unclosed_block_names_a_line(self) -> None:
        problems = check_template("{% if contact.firstname %}\nHi\n")
        assert len(problems) == 1 and problems[0].startswith("line ")
        assert "endif" in problems[0]

    def test_unknown_root_rejected_with_line(self) -> None:
        problems = check_template("Hi {{ contact.firstname }}\n{{ contat.lastname }}\n{{ os.environ }}")
        assert problems == [
            "line 2: unknown name 'contat'; tokens must start with one of: " + ", ".join(ALLOWED_ROOTS),
            "line 3: unknown name 'os'; tokens must start with one of: " + ", ".join(ALLOWED_ROOTS),
        ]

    def test_builtin_globals_are_not_available(self) -> None:
        problems = check_template("{% for i in range(3) %}{{ i }}{% endfor %}")
        assert problems and "unknown name 'range'" in problems[0]

    def test_all_allowed_roots_accepted(self) -> None:
        assert check_template(" ".join(f"{{{{ {root} }}}}" for root in ALLOWED_ROOTS)) == []

    def test_unknown_filter(self) -> None:
        problems = check_template("Hi\n{{ contact.firstname | shout }}")
        assert len(problems) == 1 and "shout" in problems[0]

    def test_private_attribute_rejected(self) -> None:
        assert check_template("{{ contact.__class__ }}") == ["line 1: access to '__class__' is not allowed"]
        assert check_template("\n{{ contact['_secret'] }}") == ["line 2: access to '_secret' is not allowed"]

    def test_include_rejected(self) -> None:
        assert check_template('{% include "footer.html" %}') == ["line 1: {% include %} is not supported"]

    def test_render_refuses_what_check_rejects(self) -> None:
        with pytest.raises(TemplateSyntaxProblem, match="line 1: unknown name 'secret'") as excinfo:
            render("{{ secret.key }}", {"secret": {"key": "x"}})
        assert excinfo.value.problems == (
            "line 1: unknown name 'secret'; tokens must start with one of: " + ", ".join(ALLOWED_ROOTS),
        )
        assert isinstance(excinfo.value, ValueError)

    def test_render_reports_syntax_error_line(self) -> None:
        with pytest.raises(TemplateSyntaxProblem, match="line 2"):
            render("ok\n{{ contact.firstname ", ADA)


class TestSandbox:
    def test_dunder_on_property_dict_rejected_statically(self) -> None:
        with pytest.raises(TemplateSyntaxProblem, match="__class__"):
            render("{{ contact.__class__ }}", ADA)

    def test_constant_folded_names_are_caught_statically(self) -> None:
        assert check_template('{{ contact["__cla" ~ "ss__"] }}') == ["line 1: access to '__class__' is not allowed"]

    @pytest.mark.parametrize(
        "source",
        [
            # Names that come from data slip past the static check and must hit the sandbox.
            "{{ contact.firstname | attr(contact.evil) }}",
            "{{ contact[contact.evil] }}",
            "{{ contact.firstname[contact.evil] }}",
            "{{ contact.firstname | attr(contact.evil) | attr(contact.evil2) }}",
            '{{ "{0.__class__}".format(contact) }}',
        ],
    )
    def test_python_internals_blocked_at_runtime(self, source: str) -> None:
        context = {"contact": {"firstname": "Ada", "evil": "__class__", "evil2": "__subclasses__"}}
        assert check_template(source) == []
        with pytest.raises(TemplateSecurityProblem, match="unsafe"):
            render(source, context)

    def test_security_problem_is_a_value_error(self) -> None:
        assert issubclass(TemplateSecurityProblem, TemplateRenderProblem)
        assert issubclass(TemplateRenderProblem, ValueError)

    def test_context_cannot_be_modified(self) -> None:
        context = {"contact": {"tags": ["a"]}}
        with pytest.raises(TemplateSecurityProblem):
            render('{{ contact.tags.append("b") }}', context)
        assert context == {"contact": {"tags": ["a"]}}

    def test_huge_string_multiplication_refused(self) -> None:
        with pytest.raises(TemplateSecurityProblem):
            render('{{ "x" * 100000000 }}', ADA)
        assert render('{{ "-" * 10 }}', ADA).text == "----------"

    def test_huge_power_refused(self) -> None:
        with pytest.raises(TemplateSecurityProblem):
            render("{{ 2 ** 10000000 }}", ADA)
        assert render("{{ 2 ** 10 }}", ADA).text == "1024"


class TestInputValidation:
    def test_context_must_be_a_mapping(self) -> None:
        with pytest.raises(TypeError):
            render("{{ contact.firstname }}", [("contact", {})])  # type: ignore[arg-type]

    def test_source_must_be_a_string(self) -> None:
        with pytest.raises(TypeError):
            check_template(b"{{ contact.firstname }}")  # type: ignore[arg-type]
