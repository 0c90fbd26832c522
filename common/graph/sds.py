"""Names School Data Sync writes into a tenant, shared by the classifier and the sandbox.

Classic SDS marks the objects it creates with directory extension attributes of its own
application (id ``fe2174665583431c953114ff7268b7b3``). Graph returns them only when they are
named in ``$select``. New SDS (v2.1 and later) shows roles through the education API instead
(``/education/users`` ``primaryRole``, ``/education/classes``, ``/education/schools``).
"""

from __future__ import annotations

SDS_APP_ID = "fe2174665583431c953114ff7268b7b3"
PREFIX = f"extension_{SDS_APP_ID}_Education_"

#: ``Student``, ``Teacher``, ``Section`` (a class) or ``School``
OBJECT_TYPE = PREFIX + "ObjectType"
#: the SIS id of the user's school (users) or of the class's school (sections)
SCHOOL_ID = PREFIX + "SyncSource_SchoolId"
STUDENT_ID = PREFIX + "SyncSource_StudentId"
TEACHER_ID = PREFIX + "SyncSource_TeacherId"
SECTION_ID = PREFIX + "SyncSource_SectionId"
GRADE = PREFIX + "Grade"
STUDENT_NUMBER = PREFIX + "StudentNumber"
TEACHER_NUMBER = PREFIX + "TeacherNumber"
SECTION_NAME = PREFIX + "SectionName"
COURSE_NUMBER = PREFIX + "CourseNumber"
TERM_NAME = PREFIX + "Term_Name"
ANCHOR_ID = PREFIX + "AnchorId"

OBJECT_TYPE_STUDENT = "Student"
OBJECT_TYPE_TEACHER = "Teacher"
OBJECT_TYPE_SECTION = "Section"

#: the extension attributes the sync reads from users and groups
USER_ATTRIBUTES = (OBJECT_TYPE, SCHOOL_ID, STUDENT_ID, TEACHER_ID, GRADE)
GROUP_ATTRIBUTES = (OBJECT_TYPE, SCHOOL_ID, SECTION_ID, SECTION_NAME)

#: education API ``primaryRole`` values that the sync treats as students and teachers
PRIMARY_ROLE_STUDENT = "student"
PRIMARY_ROLE_TEACHER = "teacher"
