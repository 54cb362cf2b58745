"""The annotation, participant and moderation endpoints are described in the OpenAPI
schema, with explicit request and response bodies and no generator warnings."""

from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

MINE = ("api_annotate", "AnnotateNext", "AnnotateSubmit", "Statement", "Participant", "Dashboard")


def test_schema_documents_the_endpoints_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    warnings = [w for w in GENERATOR_STATS._warn_cache if any(m in w for m in MINE)]
    assert warnings == []
    paths = schema["paths"]
    submit = paths["/api/studies/{study_id}/annotate/submit/"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SubmitInput"
    )
    assert set(submit["responses"]) == {"201", "400", "409"}
    assert "post" in paths["/api/studies/{study_id}/annotate/next/"]
    assert "get" not in paths["/api/studies/{study_id}/annotate/next/"]  # it hands out work
    statements = paths["/api/participate/{entry_token}/statements/"]
    assert {"get", "post"} <= set(statements)
    assert "security" not in statements["post"] or statements["post"]["security"] in ([], [{}])
    enum = schema["components"]["schemas"]["ScreenChoiceEnum"]["enum"]
    assert enum == ["first", "second", "tie"]
