"""A synthetic Swedish municipality of about N users, the same for the same seed.

Roughly: 91 % students, 5 % teachers, 3 % staff, 1 % guests; one school per 1,500 users (at
least two), alternating F-6, 7-9 and gymnasium; classes of about 25 students, each with three
teachers so that teachers teach in several classes. Every other school is synced by classic SDS
(extension attributes), the rest by new SDS (education API only); see ``sds_objects``. Things
SDS did not create are there too, so that scoping can be tested: staff accounts, Microsoft 365
groups per school ("Personal ...", "Alla elever ..." with every student of the school), a
municipality-wide security group with every employee, and a few guests. Some people share a
name, and some e-mail addresses are in mixed case.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from typing import Any

from sandbox.graph import names
from sandbox.graph.sds_objects import STUDENT, TEACHER, add_class, add_person, add_school, enroll
from sandbox.graph.store import DirObject, School, Tenant

STUDENT_SHARE, TEACHER_SHARE, STAFF_SHARE, GUEST_SHARE = 0.91, 0.05, 0.03, 0.01
USERS_PER_SCHOOL = 1500
CLASS_SIZE = 25
TEACHERS_PER_CLASS = 3
SAME_NAME_EVERY = 40  # every 40th person gets the name of the one before
MIXED_CASE_MAIL_EVERY = 15
SCHOOL_KINDS = (
    ("F-6", ("F", "1", "2", "3", "4", "5", "6")),
    ("7-9", ("7", "8", "9")),
    ("gymnasium", ("10", "11", "12")),
)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def municipality_name(seed: int) -> str:
    return random.Random(seed).choice(names.MUNICIPALITIES) + " kommun"


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


class _People:
    """Names and unique, folded user principal names."""

    def __init__(self, rng: random.Random, tenant: Tenant) -> None:
        self.rng = rng
        self.tenant = tenant
        self.count = 0
        self.last = ("Anna", "Andersson")
        self.locals: dict[str, int] = {}

    def name(self) -> tuple[str, str]:
        self.count += 1
        if self.count % SAME_NAME_EVERY != 0:
            self.last = (self.rng.choice(names.GIVEN_NAMES), self.rng.choice(names.FAMILY_NAMES))
        return self.last

    def username(self, given: str, family: str) -> str:
        base = f"{_fold(given)}.{_fold(family)}"
        number = self.locals.get(base, 0) + 1
        self.locals[base] = number
        return base if number == 1 else f"{base}{number}"

    def mail(self, username: str, given: str, family: str) -> str | None:
        if self.count % MIXED_CASE_MAIL_EVERY != 0:
            return None
        suffix = username[len(f"{_fold(given)}.{_fold(family)}") :]
        local = f"{_fold(given).capitalize()}.{_fold(family).capitalize()}{suffix}"
        return f"{local}@{self.tenant.domain}"


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _chunks(items: list[DirObject], sizes: list[int]) -> Iterator[list[DirObject]]:
    start = 0
    for size in sizes:
        yield items[start : start + size]
        start += size


def _group(
    tenant: Tenant, name: str, nickname: str, *, unified: bool, members: list[DirObject]
) -> DirObject:
    props: dict[str, Any] = {
        "displayName": name,
        "description": name,
        "mailNickname": nickname,
        "groupTypes": ["Unified"] if unified else [],
        "mailEnabled": unified,
        "securityEnabled": not unified,
    }
    if unified:
        address = f"{nickname}@{tenant.domain}"
        props.update(mail=address, proxyAddresses=[f"SMTP:{address}"], visibility="Private")
    group = tenant.add_group(props)
    for member in members:
        if member.id not in (group.members or {}):
            tenant.add_member(group, member)
    return group


def _staff(tenant: Tenant, people: _People, title: str, department: str) -> DirObject:
    given, family = people.name()
    username = people.username(given, family)
    upn = f"{username}@{tenant.domain}"
    return tenant.add_user(
        {
            "displayName": f"{given} {family}",
            "givenName": given,
            "surname": family,
            "userPrincipalName": upn,
            "mail": people.mail(username, given, family) or upn,
            "mailNickname": username,
            "accountEnabled": True,
            "userType": "Member",
            "jobTitle": title,
            "department": department,
        }
    )


def _sds_person(
    tenant: Tenant,
    people: _People,
    sis_ids: dict[str, int],
    role: str,
    school: School,
    *,
    classic: bool,
    grade: str | None = None,
) -> DirObject:
    """A student or teacher of ``school``; its SIS id, the next of its role, is its number too."""
    given, family = people.name()
    username = people.username(given, family)
    sis_ids[role] += 1
    sis_id = str(sis_ids[role])
    return add_person(
        tenant,
        role=role,
        sis_id=sis_id,
        schools=[school],
        username=username,
        given=given,
        family=family,
        mail=people.mail(username, given, family),
        grade=grade,
        number=sis_id,
        classic=classic,
    )


def _guest(tenant: Tenant, people: _People, rng: random.Random) -> DirObject:
    given, family = people.name()
    username = people.username(given, family)
    domain = rng.choice(names.GUEST_DOMAINS)
    return tenant.add_user(
        {
            "displayName": f"{given} {family} (gäst)",
            "givenName": given,
            "surname": family,
            "userPrincipalName": f"{username}_{domain}#EXT#@{tenant.domain}",
            "mail": f"{username}@{domain}",
            "mailNickname": f"{username}_{domain}#EXT#",
            "accountEnabled": True,
            "userType": "Guest",
            "creationType": "Invitation",
            "externalUserState": "Accepted",
        }
    )


def generate(tenant: Tenant, size: int, *, seed: int) -> dict[str, int]:
    """Fill ``tenant`` with a municipality of about ``size`` users; a summary of what was made."""
    rng = random.Random(seed)
    people = _People(rng, tenant)
    guests = max(1, round(size * GUEST_SHARE))
    staff_total = max(2, round(size * STAFF_SHARE))
    teachers_total = max(2, round(size * TEACHER_SHARE))
    students_total = max(1, size - guests - staff_total - teachers_total)
    school_count = max(2, round(size / USERS_PER_SCHOOL))
    place_offset = rng.randrange(len(names.PLACES))
    municipality = tenant.name
    employees: list[DirObject] = []
    sis_ids = {STUDENT: 200_000, TEACHER: 500_000}
    class_count = 0
    for index, (students_here, teachers_here, staff_here) in enumerate(
        zip(
            _spread(students_total, school_count),
            _spread(teachers_total, school_count),
            _spread(staff_total // 2, school_count),
            strict=True,
        )
    ):
        kind, grades = SCHOOL_KINDS[index % len(SCHOOL_KINDS)]
        place = names.PLACES[(place_offset + index) % len(names.PLACES)]
        if index >= len(names.PLACES):
            place += f" {index // len(names.PLACES) + 1}"
        school_name = f"{place} gymnasium" if kind == "gymnasium" else f"{place}skolan"
        classic = index % 2 == 0
        school = add_school(
            tenant,
            str(10_000 + index),
            school_name,
            schoolNumber=str(10_000 + index),
            lowestGrade=grades[0],
            highestGrade=grades[-1],
            address={
                "city": municipality.removesuffix(" kommun"),
                "countryOrRegion": "SE",
                "postalCode": None,
                "state": None,
                "street": None,
            },
        )
        teachers = [
            _sds_person(tenant, people, sis_ids, TEACHER, school, classic=classic)
            for _ in range(max(1, teachers_here))
        ]
        school_staff = [
            _staff(tenant, people, rng.choice(names.STAFF_TITLES), school_name)
            for _ in range(staff_here)
        ]
        students_of_school: list[DirObject] = []
        for grade, in_grade in zip(grades, _spread(students_here, len(grades)), strict=True):
            if in_grade == 0:
                continue
            students = [
                _sds_person(tenant, people, sis_ids, STUDENT, school, classic=classic, grade=grade)
                for _ in range(in_grade)
            ]
            students_of_school += students
            groups_in_grade = max(1, round(in_grade / CLASS_SIZE))
            for letter, members in zip(
                LETTERS, _chunks(students, _spread(in_grade, groups_in_grade)), strict=False
            ):
                label = (
                    f"{rng.choice(names.GYMNASIUM_PROGRAMS)}{int(grade) - 9}{letter}"
                    if kind == "gymnasium"
                    else f"{grade}{letter}"
                )
                group = add_class(
                    tenant,
                    sis_id=f"{school.sis_id}-{label}",
                    school=school,
                    name=f"{label} {school_name}",
                    number=label,
                    grade=grade,
                    classic=classic,
                )
                for offset in range(TEACHERS_PER_CLASS):
                    teacher = teachers[(class_count * TEACHERS_PER_CLASS + offset) % len(teachers)]
                    enroll(tenant, group, teacher, teacher=True)
                for student in members:
                    enroll(tenant, group, student, teacher=False)
                class_count += 1
        slug = _fold(place)
        _group(
            tenant,
            f"Personal {school_name}",
            f"personal-{slug}{index}",
            unified=True,
            members=teachers + school_staff,
        )
        _group(
            tenant,
            f"Alla elever {school_name}",
            f"elever-{slug}{index}",
            unified=True,
            members=students_of_school,
        )
        employees += teachers + school_staff
    office = [
        _staff(tenant, people, rng.choice(names.STAFF_TITLES), "Barn- och utbildning")
        for _ in range(staff_total - staff_total // 2)
    ]
    employees += office
    _group(tenant, "Alla anställda", "alla-anstallda", unified=False, members=employees)
    _group(tenant, "IT-support", "it-support", unified=False, members=office[:5])
    _group(tenant, "Förvaltningsledning", "forvaltningsledning", unified=True, members=office[:3])
    for _ in range(guests):
        _guest(tenant, people, rng)
    return {
        "schools": school_count,
        "classes": class_count,
        "students": students_total,
        "teachers": teachers_total,
        "staff": staff_total,
        "guests": guests,
    }
