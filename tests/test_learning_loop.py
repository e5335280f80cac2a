"""The loop closes: corrections in doccano make the models measurably better on briefs nobody corrected."""

import pytest

from annopipe.doccano.client import Credentials, DoccanoClient
from benchmarks.learning_loop import run_loop
from tests.conftest import ADMIN

pytestmark = [pytest.mark.doccano, pytest.mark.slow]


def test_correct_pull_train_promote_retag_improves_held_out_briefs(doccano, tmp_path):
    annotator = ("loop-tester", "fixes-Spans-all-day-7")
    with DoccanoClient(doccano.url, Credentials(*ADMIN)) as admin:
        user = admin.create_user(*annotator)
        with DoccanoClient(doccano.url, Credentials(*annotator)) as client:
            result = run_loop(admin, client, user["id"], tmp_path, tasks=["ner"], held_out=4, max_epochs=10)
    edits = result["annotator_edits"]
    assert edits["spans added"] > 0 and edits["spans deleted"] > 0 and edits["labels changed"] > 0
    assert result["trained"]["ner"]["promoted"]
    before, after = result["held_out_before"], result["held_out_after"]
    assert after["span_f1"] > before["span_f1"]
    assert after["accepted_unchanged"]["spans"] > before["accepted_unchanged"]["spans"]
