#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| owi_fuzz_cases::server_requests(data));
