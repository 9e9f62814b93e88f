#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| owi_fuzz_cases::export_zip(data));
