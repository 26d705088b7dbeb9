-- soak workload (test/t/009_soak.pl): tokenization.  Values come from a
-- bounded range that overlaps the writers' (1..5000), so both known and
-- new values are tokenized, concurrently.  The deterministic domain gives
-- one token per value that detokenizes back; the non-deterministic one a
-- fresh token each call, each detokenizing to the value.
\set v random(1, 6000)
SELECT soak_assert(s.t1 = s.t2
                   AND phi_guard.phi_detokenize(s.t1, 'mrn') = 'MRN-' || :v,
                   'deterministic tokenize and detokenize')
  FROM (SELECT phi_guard.phi_tokenize('MRN-' || :v, 'mrn') AS t1,
               phi_guard.phi_tokenize('MRN-' || :v, 'mrn') AS t2 OFFSET 0) s;
SELECT soak_assert(s.t1 <> s.t2
                   AND phi_guard.phi_detokenize(s.t1, 'visit') = 'V-' || :v
                   AND phi_guard.phi_detokenize(s.t2, 'visit') = 'V-' || :v,
                   'random tokenize and detokenize')
  FROM (SELECT phi_guard.phi_tokenize('V-' || :v, 'visit') AS t1,
               phi_guard.phi_tokenize('V-' || :v, 'visit') AS t2 OFFSET 0) s;
