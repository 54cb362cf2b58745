"""A dataset's settings page: K (annotations per pair) and the train/test split are set
from the UI, with help text; strangers and annotators change nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Dataset, PreferencePair, Split
from tests.factories import DatasetFactory, PairFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotator_client(client, annotator):
    client.force_login(annotator)
    return client


@pytest.fixture
def dataset(study):
    ds = DatasetFactory(study=study, name="slice", annotation_overlap=1)
    for i in range(10):
        PairFactory(dataset=ds, source_preference="a" if i % 2 else "b", split=Split.UNASSIGNED)
    return ds


def page(dataset):
    return reverse("study_dataset_settings", args=[dataset.study_id, dataset.pk])


def test_settings_page_explains_k_and_the_split(owner_client, dataset):
    html = owner_client.get(page(dataset)).content.decode()
    assert "Annotations per pair (K)" in html
    assert "How many different annotators label each pair" in html
    assert "Train/test split" in html
    assert 'name="reassign"' in html


def test_owner_sets_k_from_the_page(owner_client, dataset):
    response = owner_client.post(
        page(dataset), {"name": "slice", "description": "", "annotation_overlap": "3"}
    )
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.annotation_overlap == 3


@pytest.mark.parametrize("k", ["0", "51", "x"])
def test_bad_k_is_refused_with_a_message_and_nothing_changes(owner_client, dataset, k):
    response = owner_client.post(
        page(dataset), {"name": "slice", "description": "", "annotation_overlap": k}
    )
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.annotation_overlap == 1


def test_a_name_taken_by_another_dataset_is_refused(owner_client, dataset, study):
    DatasetFactory(study=study, name="other")
    response = owner_client.post(
        page(dataset), {"name": "other", "description": "", "annotation_overlap": "2"}
    )
    assert response.status_code == 400
    assert "Another dataset of this study has that name." in response.content.decode()
    assert Dataset.objects.get(pk=dataset.pk).name == "slice"


@pytest.mark.parametrize("persona", ["stranger_client", "annotator_client"])
def test_others_cannot_change_k(request, dataset, persona):
    client = request.getfixturevalue(persona)
    response = client.post(
        page(dataset), {"name": "hacked", "description": "", "annotation_overlap": "9"}
    )
    assert response.status_code == 404
    dataset.refresh_from_db()
    assert (dataset.name, dataset.annotation_overlap) == ("slice", 1)


def test_split_from_the_page_comes_back_to_it(owner_client, dataset):
    url = reverse("study_dataset_split", args=[dataset.study_id, dataset.pk])
    response = owner_client.post(url, {"test_fraction": "0.2", "seed": "0", "back": "dataset"})
    assert response["Location"] == page(dataset)
    splits = list(PreferencePair.objects.filter(dataset=dataset).values_list("split", flat=True))
    assert splits.count(Split.TEST) == 2
    assert splits.count(Split.TRAIN) == 8


def test_reassign_re_splits_pairs_that_already_had_a_split(owner_client, dataset):
    PreferencePair.objects.filter(dataset=dataset).update(split=Split.TEST)
    url = reverse("study_dataset_split", args=[dataset.study_id, dataset.pk])
    owner_client.post(url, {"test_fraction": "0.2", "seed": "0"})
    assert not PreferencePair.objects.filter(dataset=dataset, split=Split.TRAIN).exists()
    owner_client.post(url, {"test_fraction": "0.2", "seed": "0", "reassign": "on"})
    assert PreferencePair.objects.filter(dataset=dataset, split=Split.TRAIN).count() == 8


def test_build_page_links_datasets_without_training_pairs_to_their_split(owner_client, dataset):
    html = owner_client.get(
        reverse("study_constitutions", args=[dataset.study_id])
    ).content.decode()
    assert 'id="split-needed"' in html
    assert f"{page(dataset)}#split" in html
    PreferencePair.objects.filter(dataset=dataset).update(split=Split.TRAIN)
    html = owner_client.get(
        reverse("study_constitutions", args=[dataset.study_id])
    ).content.decode()
    assert 'id="split-needed"' not in html


def test_dashboard_and_data_page_link_to_the_dataset_settings(owner_client, dataset):
    for name in ("study_detail", "study_data"):
        html = owner_client.get(reverse(name, args=[dataset.study_id])).content.decode()
        assert page(dataset) in html, name
