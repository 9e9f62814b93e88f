//! `export_cda.xml` and `export.zip`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::body::Extras;
use crate::out::escaped;
use crate::{Error, SampleManifest};

/// Entries at or above this size need ZIP64.
const ZIP64_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// Writes a small CDA document. Like the real one it is not well-formed: it
/// has two root elements.
pub(crate) fn write_cda(path: &Path, extras: &Extras) -> Result<(), Error> {
    // "2024-06-01 08:10:05 +0200" -> "20240601081005+0200"
    let text = &extras.export_text;
    let mut compact: String = text
        .get(..19)
        .unwrap_or(text)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    compact.push_str(text.get(20..).unwrap_or(""));
    let birth: String = extras
        .birth_date
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let owner = escaped(extras.owner);
    let doc = format!(
        r#"<?xml version="1.0"?>
<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:hl7-org:v3 CDA.xsd" xmlns:sdtc="urn:hl7-org:sdtc">
 <realmCode code="US"/>
 <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
 <templateId root="2.16.840.1.113883.10.20.22.1.1"/>
 <templateId root="2.16.840.1.113883.10.20.22.1.2"/>
 <id extension="Health Export" root="1.1.1.1.1.1.1.1.1"/>
 <code codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" code="34133-9" displayName="Summarization of episode note"/>
 <title>Health Data Export</title>
 <effectiveTime value="{compact}"/>
 <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
 <languageCode code="en-US"/>
 <recordTarget>
  <patientRole>
   <id nullFlavor="NA"/>
   <patient>
    <name><given>{owner}</given></name>
    <administrativeGenderCode nullFlavor="UNK"/>
    <birthTime value="{birth}"/>
   </patient>
  </patientRole>
 </recordTarget>
 <component>
  <structuredBody>
   <component>
    <section>
     <templateId root="2.16.840.1.113883.10.20.22.2.4.1"/>
     <code code="8716-3" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" displayName="Vital Signs"/>
     <title>Vital Signs</title>
     <entry typeCode="DRIV">
      <organizer classCode="CLUSTER" moodCode="EVN">
       <component>
        <observation classCode="OBS" moodCode="EVN">
         <code code="8867-4" codeSystem="2.16.840.1.113883.6.1" displayName="Heart rate"/>
         <effectiveTime><low value="{compact}"/><high value="{compact}"/></effectiveTime>
         <value xsi:type="PQ" value="72" unit="count/min"/>
        </observation>
       </component>
      </organizer>
     </entry>
    </section>
   </component>
  </structuredBody>
 </component>
</ClinicalDocument>
<ClinicalDocument xmlns="urn:hl7-org:v3">
 <title>Health Data Export</title>
 <effectiveTime value="{compact}"/>
</ClinicalDocument>
"#
    );
    std::fs::write(path, doc).map_err(|e| Error::io(path, e))
}

/// Streams the XML, the CDA document and the GPX files into `zip_path`.
pub(crate) fn write_zip(
    zip_path: &Path,
    manifest: &SampleManifest,
    extras: &Extras,
    cda_path: &Path,
    routes_dir: &Path,
) -> Result<(), Error> {
    let zip_err = |source| Error::Zip {
        path: zip_path.to_path_buf(),
        source,
    };
    let file = File::create(zip_path).map_err(|e| Error::io(zip_path, e))?;
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));

    let [y, mo, d, h, mi, s] = extras.export_civil;
    let stamp = DateTime::from_date_and_time(
        u16::try_from(y).unwrap_or(2024),
        mo as u8,
        d as u8,
        h as u8,
        mi as u8,
        s as u8,
    )
    .unwrap_or_default();
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .unix_permissions(0o644);

    let xml_name = manifest
        .xml_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export.xml".to_owned());
    let mut entries: Vec<(String, std::path::PathBuf, bool)> = vec![
        (
            format!("apple_health_export/{xml_name}"),
            manifest.xml_path.clone(),
            manifest.xml_bytes >= ZIP64_LIMIT,
        ),
        (
            "apple_health_export/export_cda.xml".to_owned(),
            cda_path.to_path_buf(),
            false,
        ),
    ];
    for name in &extras.route_names {
        entries.push((
            format!("apple_health_export/workout-routes/{name}"),
            routes_dir.join(name),
            false,
        ));
    }

    for (name, path, large) in entries {
        let source = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, source);
        zip.start_file(name, options.large_file(large))
            .map_err(zip_err)?;
        std::io::copy(&mut reader, &mut zip).map_err(|e| Error::io(&path, e))?;
    }
    let mut inner = zip.finish().map_err(zip_err)?;
    inner.flush().map_err(|e| Error::io(zip_path, e))?;
    Ok(())
}
