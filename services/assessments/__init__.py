"""Assessments: SLEDAI-2K visits, autoantibodies and complement, CAR-T kinetics,
remission (DORIS, LLDAS, SRI-4) and progression of NCT05030779 subjects."""
