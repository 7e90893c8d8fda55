-- A small archive-like schema: the four levels of the DICOM information model
-- (patient / study / series / instance), for tests and demonstrations. It runs
-- once, at the first initialisation, in POSTGRES_DB as POSTGRES_USER. The tables
-- start empty.

CREATE TABLE patient (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pat_id        varchar(64)  NOT NULL,            -- (0010,0020) Patient ID
    pat_id_issuer varchar(64)  NOT NULL DEFAULT '', -- (0010,0021) Issuer of Patient ID
    pat_name      varchar(324),                     -- (0010,0010) Patient's Name
    pat_birthdate date,                             -- (0010,0030)
    pat_sex       char(1) CHECK (pat_sex IN ('M', 'F', 'O')),
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT patient_id_issuer_uk UNIQUE (pat_id, pat_id_issuer)
);

CREATE TABLE study (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_fk    bigint       NOT NULL REFERENCES patient (pk) ON DELETE RESTRICT,
    study_iuid    varchar(64)  NOT NULL UNIQUE,     -- (0020,000D) Study Instance UID
    study_id      varchar(16),                      -- (0020,0010)
    study_date    date,                             -- (0008,0020)
    study_time    time,                             -- (0008,0030)
    accession_no  varchar(16),                      -- (0008,0050)
    study_desc    varchar(64),                      -- (0008,1030)
    num_series    integer      NOT NULL DEFAULT 0 CHECK (num_series >= 0),
    num_instances integer      NOT NULL DEFAULT 0 CHECK (num_instances >= 0),
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX study_patient_fk_ix ON study (patient_fk);
CREATE INDEX study_accession_no_ix ON study (accession_no);
CREATE INDEX study_date_ix ON study (study_date);

CREATE TABLE series (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    study_fk      bigint       NOT NULL REFERENCES study (pk) ON DELETE CASCADE,
    series_iuid   varchar(64)  NOT NULL UNIQUE,     -- (0020,000E) Series Instance UID
    series_no     integer,                          -- (0020,0011)
    modality      varchar(16)  NOT NULL,            -- (0008,0060)
    body_part     varchar(16),                      -- (0018,0015)
    series_desc   varchar(64),                      -- (0008,103E)
    station_name  varchar(16),                      -- (0008,1010)
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX series_study_fk_ix ON series (study_fk);
CREATE INDEX series_modality_ix ON series (modality);

CREATE TABLE instance (
    pk            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_fk     bigint       NOT NULL REFERENCES series (pk) ON DELETE CASCADE,
    sop_iuid      varchar(64)  NOT NULL UNIQUE,     -- (0008,0018) SOP Instance UID
    sop_cuid      varchar(64)  NOT NULL,            -- (0008,0016) SOP Class UID
    inst_no       integer,                          -- (0020,0013) Instance Number
    transfer_syntax varchar(64),
    storage_path  text         NOT NULL,            -- where the object is stored
    object_size   bigint       NOT NULL CHECK (object_size >= 0),
    digest        char(64),                         -- SHA-256 of the stored object, hex
    received_at   timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX instance_series_fk_ix ON instance (series_fk);
CREATE INDEX instance_sop_cuid_ix ON instance (sop_cuid);

COMMENT ON TABLE patient  IS 'A patient, unique by (pat_id, pat_id_issuer)';
COMMENT ON TABLE study    IS 'An imaging study of one patient';
COMMENT ON TABLE series   IS 'A series of one study, one modality';
COMMENT ON TABLE instance IS 'One stored DICOM object (SOP instance) of a series';
