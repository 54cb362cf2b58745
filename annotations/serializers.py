from rest_framework import serializers

from annotations.models import Participation, Study


class StudyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Study
        fields = [
            "id",
            "name",
            "description",
            "created_at",
            "accepting_participants",
            "value_questions",
            "statements_min",
            "statements_max",
            "reason_min_length",
            "participation",
            "reveal_prolific_ids",
        ]


class StudyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    value_questions = serializers.ListField(
        child=serializers.CharField(max_length=2000), required=False, default=list
    )
    statements_min = serializers.IntegerField(min_value=1, max_value=20, required=False, default=1)
    statements_max = serializers.IntegerField(min_value=1, max_value=20, required=False, default=3)
    reason_min_length = serializers.IntegerField(
        min_value=0, max_value=2000, required=False, default=15
    )
    participation = serializers.ChoiceField(
        choices=Participation.choices,
        required=False,
        default=Participation.OPEN,
        help_text="prolific: links without PROLIFIC_PID are refused. open: anonymous "
        "entries allowed, one per browser (clearing cookies gets another).",
    )

    def validate(self, attrs):
        if attrs["statements_min"] > attrs["statements_max"]:
            raise serializers.ValidationError(
                {"statements_max": "Must be at least statements_min."}
            )
        return attrs
