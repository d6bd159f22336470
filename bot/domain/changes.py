"""What follows a change people see on an incident, in one place.

Every service that changes an incident in a way people see (a step's result, a milestone, a handover, the
close, the watch's verdict, a danger-zone run) calls :meth:`Changes.after` once the change is written. It
decides what follows, in this order: the stakeholders hear every milestone reached and not yet announced
(:meth:`bot.domain.stakeholders.Stakeholders.sync`, once each, also across replicas), then the control panel
and the checklists are redrawn from the record. An announcement that fails does not stop the redraw; the
recovery sweep announces it again.
"""

from __future__ import annotations

import logging

from bot.domain.desk import Desk
from bot.domain.stakeholders import Stakeholders

log = logging.getLogger(__name__)


class Changes:
    """What follows a change to an incident, as explicit calls: the panel redrawn, a milestone said to the
    stakeholders."""

    def __init__(self, desk: Desk, stakeholders: Stakeholders) -> None:
        self.desk, self.stakeholders = desk, stakeholders

    def after(self, incident_id: str) -> None:
        try:
            self.stakeholders.sync(incident_id)
        except Exception:  # announced again by the recovery sweep; the panel still redraws
            log.exception("could not announce the milestones of %s", incident_id)
        self.desk.redraw(incident_id)
